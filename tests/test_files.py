"""steve/files.py: the stock CSV is read as PUT /stock reads its rows —
a channel alias stands for its sku; unknown nodes and items, a second row
for a node and item, and malformed rows are refused with FILE:LINE."""

from __future__ import annotations

import pytest

from conftest import SEED
from steve.files import InputError, load_catalog, load_network, load_stock

NETWORK = load_network(str(SEED / "network.json"))
CATALOG = load_catalog(str(SEED / "catalog.json"))


def stock_file(tmp_path, monkeypatch, text: str, encoding: str = "utf-8") -> str:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stock.csv").write_text(text, encoding=encoding)
    return "stock.csv"


def refused(path: str) -> str:
    with pytest.raises(InputError) as raised:
        load_stock(path, NETWORK, CATALOG)
    return str(raised.value)


def test_an_alias_stands_for_its_sku(tmp_path, monkeypatch):
    # SHOP-1001 is a channel alias of PARKA-M-RED; Red XL Shirt one of TEE-XL-RED
    path = stock_file(tmp_path, monkeypatch, "node,sku,on_hand\nNJ-DC,SHOP-1001,4\nTX-DC,Red XL Shirt,2\n"
                                             "TX-DC,PARKA-M-RED,1\n")
    assert load_stock(path, NETWORK, CATALOG).levels == {("NJ-DC", "PARKA-M-RED"): [4, 0],
                                                         ("TX-DC", "TEE-XL-RED"): [2, 0],
                                                         ("TX-DC", "PARKA-M-RED"): [1, 0]}


def test_the_header_may_be_in_any_order_with_reserved_and_other_columns(tmp_path, monkeypatch):
    path = stock_file(tmp_path, monkeypatch, "\ufeffsku, on_hand ,bin,node,reserved\n\n"
                                             "BELT-M-BRN,5,A-3,NJ-DC,2\nGLOVES-L,7,,OH-DC,\n")
    assert load_stock(path, NETWORK, CATALOG).levels == {("NJ-DC", "BELT-M-BRN"): [5, 2],
                                                         ("OH-DC", "GLOVES-L"): [7, 0]}


@pytest.mark.parametrize("text, message", [
    ("node,sku,on_hand\nNJ-DX,BELT-M-BRN,5\n",
     "stock.csv:2: unknown node 'NJ-DX': the network has no such node; did you mean \"NJ-DC\"?"),
    ("node,sku,on_hand\nZZZ,BELT-M-BRN,5\n", "stock.csv:2: unknown node 'ZZZ': the network has no such node"),
    ("node,sku,on_hand\nNJ-DC,BELT-M-BRM,3\n",
     "stock.csv:2: unknown item 'BELT-M-BRM': no sku or channel alias in the catalog has that name; "
     "did you mean \"BELT-M-BRN\"?"),
    # every problem is counted; the first is told
    ("node,sku,on_hand\nNJ-DC,BELT-M-BRN,5\n\nZZZ,NOPE,3\nNJ-DC,GLOVES-L,-1\n",
     "stock.csv:4: unknown node 'ZZZ': the network has no such node (and 2 more problems)"),
])
def test_unknown_nodes_and_items_are_refused(tmp_path, monkeypatch, text, message):
    assert refused(stock_file(tmp_path, monkeypatch, text)) == message


@pytest.mark.parametrize("text, message", [
    ("node,sku,on_hand\nNJ-DC,BELT-M-BRN,5\nOH-DC,BELT-M-BRN,1\nNJ-DC,BELT-M-BRN,5\n",
     "stock.csv:4: a second row for NJ-DC and BELT-M-BRN (the first is on line 2); give one row per node and item"),
    ("node,sku,on_hand\nNJ-DC,PARKA-M-RED,3\nNJ-DC,SHOP-1001,4\n",
     "stock.csv:3: a second row for NJ-DC and PARKA-M-RED (the first is on line 2; SHOP-1001 is an alias of "
     "PARKA-M-RED); give one row per node and item"),
    ("node,sku,on_hand\nNJ-DC,AMZ-B0PARKAMR,3\nNJ-DC,SHOP-1001,4\n",
     "stock.csv:3: a second row for NJ-DC and PARKA-M-RED (the first is on line 2; AMZ-B0PARKAMR is an alias of "
     "PARKA-M-RED; SHOP-1001 is an alias of PARKA-M-RED); give one row per node and item"),
])
def test_a_second_row_for_a_node_and_item_is_refused(tmp_path, monkeypatch, text, message):
    assert refused(stock_file(tmp_path, monkeypatch, text)) == message


@pytest.mark.parametrize("text, message", [
    ("", "stock.csv: empty; a stock file starts with the header node,sku,on_hand"),
    ("\n\n", "stock.csv: empty; a stock file starts with the header node,sku,on_hand"),
    ("NJ-DC,BELT-M-BRN,5\n", "stock.csv:1: the first line must be the header node,sku,on_hand "
                             "(it is NJ-DC,BELT-M-BRN,5)"),
    ("\nnode,sku,onhand\n", "stock.csv:2: the header needs the columns node,sku,on_hand (missing: on_hand)"),
    ("node,sku,on_hand,sku\n", "stock.csv:1: the header names sku twice"),
    ("node,sku,on_hand\nNJ-DC,BELT-M-BRN,5,6\n",
     "stock.csv:2: 4 values where the header has 3 columns (node,sku,on_hand)"),
    ("node,sku,on_hand\nNJ-DC,BELT-M-BRN\n", "stock.csv:2: 2 values where the header has 3 columns (node,sku,on_hand)"),
    ("node,sku,on_hand\nNJ-DC, ,\n", "stock.csv:2: no sku and no on_hand"),
    ("node,sku,on_hand\n\n\nNJ-DC,BELT-M-BRN,-1\n", "stock.csv:4: on_hand: Input should be greater than or equal to 0"),
    ("node,sku,on_hand\nNJ-DC,BELT-M-BRN,2.5\n",
     "stock.csv:2: on_hand: Input should be a valid integer, unable to parse string as an integer"),
    ("node,sku,on_hand\nNJ-DC,BELT-M-BRN,lots\n",
     "stock.csv:2: on_hand: Input should be a valid integer, unable to parse string as an integer"),
])
def test_malformed_files_are_refused_with_the_line(tmp_path, monkeypatch, text, message):
    assert refused(stock_file(tmp_path, monkeypatch, text)) == message


def test_without_a_network_and_catalog_names_are_taken_as_they_are(tmp_path, monkeypatch):
    # (library use: the engine's own tests and benchmarks load stock on its own)
    path = stock_file(tmp_path, monkeypatch, "node,sku,on_hand\nZZZ,SHOP-1001,4\n")
    assert load_stock(path).levels == {("ZZZ", "SHOP-1001"): [4, 0]}
    assert refused(path) == "stock.csv:2: unknown node 'ZZZ': the network has no such node"
