"""engine/models.py: the data contract refuses JSON values of the wrong kind
instead of letting pydantic's lax mode turn them into something else."""

import pytest
from pydantic import ValidationError

from engine.models import Catalog, Network, Order, StockRow, order_key
from engine.router import validation_problems

ORDER = {"id": "M-1", "ship_to": {"zip": "80202"}, "lines": [{"sku": "A", "qty": 1}]}
NODE = {"id": "N1", "lat": 39.7, "lon": -105.0}
CARRIER = {"id": "GROUND", "base": 5.0, "km_per_day": 800}


def problems(model, document) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(document)
    return [(".".join(map(str, e["loc"])), e["msg"]) for e in caught.value.errors(include_url=False)]


def test_true_is_not_a_number():
    # (the order's only line is refused, so the order also has no line left)
    assert problems(Order, {**ORDER, "lines": [{"sku": "A", "qty": True}]}) == [
        ("lines.0.qty", "Value error, a number is needed here, not true or false"),
        ("lines", "Tuple should have at least 1 item after validation, not 0")]
    assert problems(StockRow, {"node": "N1", "sku": "A", "on_hand": False}) == [
        ("on_hand", "Value error, a number is needed here, not true or false")]


def test_a_flag_must_be_true_or_false():
    network = {"nodes": [{**NODE, "ships": "no"}], "carriers": [CARRIER]}
    assert problems(Network, network) == [
        ("nodes.0.ships", "Value error, true or false is needed here")]


def test_a_date_is_text_not_a_number():
    network = {"nodes": [{**NODE, "kind": "transit", "eta": 0}], "carriers": [CARRIER]}
    assert problems(Network, network) == [
        ("nodes.0.eta", "Value error, a date is written as text: 2026-11-27, or "
                        "2026-11-27T10:15:00-05:00 with a time")]
    assert problems(Order, {**ORDER, "created_at": 1764000000}) == [
        ("created_at", "Value error, a date is written as text: 2026-11-27, or "
                       "2026-11-27T10:15:00-05:00 with a time")]


def test_values_of_the_right_kind_pass():
    order = Order.model_validate({**ORDER, "created_at": "2026-11-27T10:15:00-05:00",
                                  "lines": [{"sku": "A", "qty": 2, "price": 10}]})
    assert order.lines[0].qty == 2 and order.lines[0].price == 10.0
    assert order.created_at.isoformat() == "2026-11-27T10:15:00-05:00"
    network = Network.model_validate({"nodes": [{**NODE, "ships": False, "kind": "transit",
                                                 "eta": "2026-11-30"}], "carriers": [CARRIER]})
    assert network.nodes[0].ships is False and str(network.nodes[0].eta) == "2026-11-30"
    assert StockRow.model_validate({"node": "N1", "sku": "A", "on_hand": 3}).on_hand == 3


def test_a_pickup_order_without_a_pickup_node_names_the_field():
    for missing in ({"pickup_node": None}, {}, {"pickup_node": " "}):
        assert problems(Order, {**ORDER, "delivery": "pickup", **missing}) == [
            ("pickup_node", "Value error, a pickup order needs pickup_node: the node where the customer "
                            "collects it")]
    assert Order.model_validate({**ORDER, "delivery": "pickup", "pickup_node": "DEN-STORE"}).pickup_node == \
        "DEN-STORE"
    assert Order.model_validate({**ORDER, "pickup_node": None}).delivery == "ship"


def test_numbers_must_be_finite():
    # json.loads reads NaN and Infinity; NaN used to fail every bound ("less than or equal to 90")
    # and Infinity passed a lower bound (a price of inf)
    order = {**ORDER, "ship_to": {"lat": float("nan"), "lon": float("-inf")},
             "lines": [{"sku": "A", "qty": 1, "price": float("inf")}, {"sku": "B", "qty": 1, "weight": "NaN"}]}
    assert problems(Order, order)[:4] == [
        ("ship_to.lat", "Input should be a finite number"), ("ship_to.lon", "Input should be a finite number"),
        ("lines.0.price", "Input should be a finite number"), ("lines.1.weight", "Input should be a finite number")]
    assert problems(Network, {"nodes": [{**NODE, "lat": float("nan")}], "carriers": [CARRIER]}) == [
        ("nodes.0.lat", "Input should be a finite number")]
    assert problems(Order, {**ORDER, "ship_to": {"lat": 91, "lon": 0}}) == [
        ("ship_to.lat", "Input should be less than or equal to 90")]


def test_created_at_far_outside_today_is_refused_at_its_field():
    # year 1 overflowed when moved to the playbook's timezone: a 500 on POST /route
    for stamp in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59-05:00"):
        with pytest.raises(ValidationError) as refused:
            Order.model_validate({"id": "Y-1", "created_at": stamp, "ship_to": {"state": "MA"},
                                  "lines": [{"sku": "A", "qty": 1}]})
        assert [(e["loc"], e["msg"]) for e in refused.value.errors()] == [
            (("created_at",), "Value error, a time between the years 1900 and 9000")]


def test_order_key_is_the_order_as_steve_reads_it_with_the_bytes_of_keys_stored_before():
    from server.store import digest
    sent = {"id": "K-1", "created_at": "2026-11-25T10:15:00-05:00", "customer": {"tier": "regular"},
            "ship_to": {"zip": "02108"}, "lines": [{"sku": "JKT-RAIN-M", "qty": 1}]}
    # key order, 1.0, spaces around text, defaults sent, keys Steve ignores: the same order
    spelled = {"note": "ignored", "tags": [], "pickup_node": None, "delivery": "ship",
               **{k: sent[k] for k in reversed(list(sent))}, "id": " K-1 ",
               "lines": [{"qty": 1.0, "sku": "JKT-RAIN-M", "price": None}]}
    key = order_key(Order.model_validate(sent))
    assert order_key(Order.model_validate(spelled)) == key
    assert order_key(Order.model_validate({**sent, "lines": [{"sku": "JKT-RAIN-M", "qty": 2}]})) != key
    assert order_key(Order.model_validate({k: v for k, v in sent.items() if k != "created_at"})) != key
    # what POST /orders stored as body_hash before the key moved here (server.store.digest of the order)
    order = Order.model_validate(sent)
    assert key == digest(order.model_dump(mode="json", exclude_defaults=True)) == \
        "45967c919435eae83bed7b465886f6a23867681466dc6a4c94111b4af25a8727"


def test_the_service_is_read_in_any_case():
    # the playbook reads `order.service is express` and `is "Express"` alike;
    # an order sent "Express" is express, not a service no rule can name
    assert Order.model_validate({**ORDER, "service": "Express"}).service == "express"
    assert Order.model_validate({**ORDER, "service": " EXPRESS "}).service == "express"
    assert order_key(Order.model_validate({**ORDER, "service": "STANDARD"})) == \
        order_key(Order.model_validate(ORDER))


def test_a_repeated_node_or_carrier_id_is_reported_where_it_repeats():
    node = {"kind": "warehouse", "lat": 40.0, "lon": -75.0}
    carrier = {"id": "K", "base": 1.0, "per_kg": 0.1, "per_1000km": 1.0, "km_per_day": 500}
    with pytest.raises(ValidationError) as caught:
        Network.model_validate({"nodes": [{"id": "A", **node}, {"id": "B", **node}, {"id": "A", **node}],
                                "carriers": [carrier]})
    assert validation_problems(caught.value) == [
        {"loc": "nodes.2.id", "msg": "node id 'A' appears twice (first at nodes.0)"}]
    with pytest.raises(ValidationError) as caught:
        Network.model_validate({"nodes": [{"id": "A", **node}], "carriers": [carrier, carrier]})
    assert validation_problems(caught.value) == [
        {"loc": "carriers.1.id", "msg": "carrier id 'K' appears twice (first at carriers.0)"}]


def test_a_name_two_items_claim_is_reported_where_it_repeats():
    with pytest.raises(ValidationError) as caught:
        Catalog.model_validate({"items": [{"sku": "X"}, {"sku": "Y", "aliases": ["Z", "X"]}]})
    assert validation_problems(caught.value) == [{"loc": "items.1.aliases.1", "msg": "'X' names both X and Y"}]
    with pytest.raises(ValidationError) as caught:
        Catalog.model_validate({"items": [{"sku": "X{0}"}, {"sku": "X{0}"}]})
    assert validation_problems(caught.value) == [{"loc": "items.1.sku", "msg": "sku 'X{0}' appears twice"}]


def _models():
    from pydantic import BaseModel

    import engine.models as models
    import server.schemas as schemas
    found = []      # what Steve reads: the data contract, and the HTTP bodies (not the answers)
    for module, base in ((models, BaseModel), (schemas, schemas._Body)):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, base) and value.__module__ == module.__name__ \
                    and value.model_fields and value not in found:
                found.append(value)
    return found


WRONG_KIND = {  # what json_kinds checks -> a value of the wrong kind, the message
    1: (True, "Value error, a number is needed here, not true or false"),
    2: (1, "Value error, true or false is needed here"),
    3: (0, "Value error, a date is written as text: 2026-11-27, or 2026-11-27T10:15:00-05:00 with a time"),
}


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.__name__)
def test_every_number_flag_and_date_field_refuses_the_wrong_kind(model):
    """The order's parts name their checked fields one by one (a validator
    on every field costs a Python call each, per order): a field added
    later without its check would be taken in lax mode. Each field that
    engine.models.kind_check says is checked refuses a value of the wrong
    kind, in every model of the data contract and the HTTP bodies."""
    from engine.models import kind_check
    checked = {name: WRONG_KIND[kind_check(model, name)] for name in model.model_fields
               if kind_check(model, name) in WRONG_KIND}
    if not checked:
        return
    with pytest.raises(ValidationError) as caught:
        model.model_validate({name: value for name, (value, _) in checked.items()})
    said = {e["loc"][0]: e["msg"] for e in caught.value.errors(include_url=False) if len(e["loc"]) == 1}
    assert {name: said.get(name) for name in checked} == {name: message for name, (_, message) in checked.items()}
