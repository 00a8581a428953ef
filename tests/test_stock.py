"""engine/stock.py: the stock view and its index of nodes by item."""

from engine.stock import Levels, Stock


def stock_of(*rows: tuple[str, str, int, int]) -> Stock:
    stock = Stock()
    for node, sku, on_hand, reserved in rows:
        stock.levels[(node, sku)] = [on_hand, reserved]
    return stock


def test_nodes_with_an_item_follow_rows_added_and_replaced():
    stock = stock_of(("N1", "A", 3, 0), ("N2", "A", 0, 0), ("N2", "B", 1, 0))
    assert stock.nodes_with("A") == ["N1", "N2"] and stock.nodes_with("B") == ["N2"]
    assert list(stock.nodes_with("C")) == []
    stock.levels[("N3", "A")] = [5, 0]
    stock.levels[("N1", "A")] = [9, 9]           # replaced: still there
    assert stock.nodes_with("A") == ["N1", "N2", "N3"]


def test_a_row_removed_and_another_added_is_not_missed():
    """The same number of rows after a removal and an addition: the index
    must still see the change (it once counted rows)."""
    stock = stock_of(("N1", "A", 3, 0))
    assert stock.nodes_with("A") == ["N1"]
    del stock.levels[("N1", "A")]
    stock.levels[("N2", "B")] = [1, 0]
    assert list(stock.nodes_with("A")) == [] and stock.nodes_with("B") == ["N2"]
    stock.levels.pop(("N2", "B"))
    stock.levels.setdefault(("N4", "B"), [2, 0])
    assert stock.nodes_with("B") == ["N4"]
    stock.levels.update({("N5", "B"): [1, 0]})
    assert stock.nodes_with("B") == ["N4", "N5"]
    stock.levels.clear()
    assert list(stock.nodes_with("B")) == []


def test_levels_stay_a_counting_dict():
    assert isinstance(Stock().levels, Levels)
    assert isinstance(Stock({("N1", "A"): [1, 0]}).levels, Levels)
    stock = stock_of(("N1", "A", 3, 1))
    copy = stock.copy()
    assert isinstance(copy.levels, Levels) and copy.nodes_with("A") == ["N1"]
    copy.reserve("N1", "A", 2)
    assert stock.available("N1", "A") == 2 and copy.available("N1", "A") == 0
    stock.levels = {("N9", "Z"): [1, 0]}         # replaced wholesale by a plain dict
    assert stock.nodes_with("Z") == ["N9"]


def test_rows_with_an_item_give_the_live_counts():
    """rows_with() hands out the rows' own [on_hand, reserved] lists: a
    reservation shows at once, and a row whose list is replaced by another
    is indexed again (the router reads the counts from here)."""
    stock = stock_of(("N1", "A", 3, 0), ("N2", "A", 2, 0))
    assert stock.rows_with("A") == [("N1", [3, 0]), ("N2", [2, 0])]
    stock.reserve("N1", "A", 2)
    assert stock.rows_with("A")[0] == ("N1", [3, 2])
    stock.levels[("N2", "A")] = [7, 1]           # the same key, a new list
    assert stock.rows_with("A") == [("N1", [3, 2]), ("N2", [7, 1])]
    stock.levels[("N2", "A")][0] = 4             # counts changed in place
    assert stock.rows_with("A")[1] == ("N2", [4, 1])
    assert list(stock.rows_with("B")) == []
