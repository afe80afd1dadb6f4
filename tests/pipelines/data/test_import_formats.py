"""Import formats decided per column from the whole file: numbers, date orders, encodings, layouts.

Each case here was silently misread before (``"1,234"`` -> 1.234, two date orders in one column) or
ended in a traceback (Latin-1, UTF-16); now it is read one way or refused naming the option to pass.
"""

import logging
import re

import pandas as pd
import pytest

from pipelines.contract import ExitCode
from pipelines.data.formats import FormatError, ParseOptions, detect_encoding, parse_datetimes, parse_numbers
from pipelines.data.importers import DataImportError, import_reviews, import_transactions


@pytest.fixture
def wh(tmp_path):
    from pipelines.warehouse import connect

    with connect(f"duckdb:///{tmp_path}/wh.duckdb") as warehouse:
        warehouse.init_schema()
        yield warehouse


def _amounts(wh) -> list[float]:
    return wh.query_df(wh.render("SELECT total_amount FROM {orders} ORDER BY order_id"))["total_amount"].tolist()


def _dates(wh) -> list[str]:
    frame = wh.query_df(wh.render("SELECT ordered_at FROM {orders} ORDER BY order_id"))
    return [pd.Timestamp(v).strftime("%Y-%m-%d") for v in frame["ordered_at"]]


def _csv(tmp_path, name: str, amounts: list[str], dates: list[str] | None = None, sep: str = ";"):
    dates = dates or [f"2025-01-{i + 1:02d}" for i in range(len(amounts))]
    rows = [f"{i + 1}{sep}{i + 1}{sep}{d}{sep}{a}" for i, (a, d) in enumerate(zip(amounts, dates, strict=True))]
    path = tmp_path / name
    path.write_text(f"order_id{sep}customer_id{sep}date{sep}amount\n" + "\n".join(rows) + "\n")
    return path


# -- numbers ---------------------------------------------------------------------------------------------------
def test_thousands_comma_alone_is_refused_naming_the_column_and_options(tmp_path, wh):
    path = _csv(tmp_path, "a.csv", ["1,234", "15"])
    with pytest.raises(DataImportError) as err:
        import_transactions(wh, path)
    message = str(err.value)
    assert "column amount" in message and "'1,234'" in message and "\n" not in message
    assert "--decimal ," in message and "--thousands ." in message
    assert wh.row_count("orders") == 0
    import_transactions(wh, path, options=ParseOptions(thousands=","))
    assert _amounts(wh) == [1234.0, 15.0]
    import_transactions(wh, path, replace=True, options=ParseOptions(decimal=","))
    assert _amounts(wh) == [1.23, 15.0]  # 1.234 rounded to cents, because the user said so


def test_one_convention_per_column_decided_by_the_whole_column(tmp_path, wh):
    import_transactions(wh, _csv(tmp_path, "point.csv", ["1,234", "2.50", "1,234.56"]))
    assert _amounts(wh) == [1234.0, 2.5, 1234.56]  # "2.50" decides: "." is the decimal mark
    import_transactions(wh, _csv(tmp_path, "comma.csv", ["1.234,56", "1 234,56", "7,5", "1.234"]), replace=True)
    assert _amounts(wh) == [1234.56, 1234.56, 7.5, 1234.0]  # "," decimal: "1.234" is a thousand


def test_a_column_mixing_conventions_is_refused(tmp_path, wh):
    with pytest.raises(DataImportError, match=r"column amount mixes number formats: '2.25' reads only .* '1,5' only"):
        import_transactions(wh, _csv(tmp_path, "m.csv", ["1,5", "2.25"]))
    assert wh.row_count("orders") == 0


def test_declared_convention_rejects_rows_that_do_not_follow_it(tmp_path, wh):
    with pytest.raises(DataImportError, match=r"row 2: amount '2.25' is not a number"):
        import_transactions(wh, _csv(tmp_path, "d.csv", ["1,5", "2.25"]), options=ParseOptions(decimal=","))


@pytest.mark.parametrize("value", ["NaN", "nan", "Infinity", "inf", "-inf", "+Inf"])
def test_non_finite_numbers_are_refused_at_import(tmp_path, wh, value):
    with pytest.raises(DataImportError, match=re.escape(f"row 2: amount '{value}' is not a finite number")):
        import_transactions(wh, _csv(tmp_path, "n.csv", ["1.50", value]))
    assert wh.row_count("orders") == 0


def test_non_finite_numbers_in_typed_parquet_are_refused(tmp_path, wh):
    path = tmp_path / "p.parquet"
    pd.DataFrame(
        {"customer_id": [1, 2], "timestamp": ["2025-01-01", "2025-01-02"], "amount": [1.0, float("inf")]}
    ).to_parquet(path)
    with pytest.raises(DataImportError, match=r"row 2: amount inf is not a finite number"):
        import_transactions(wh, path)
    path = tmp_path / "r.parquet"
    pd.DataFrame({"customer_id": [1], "timestamp": ["2025-01-01"], "rating": [float("-inf")]}).to_parquet(path)
    with pytest.raises(DataImportError, match=r"rating -inf is not a finite number"):
        import_reviews(wh, path)


def test_parse_numbers_unit():
    raw = pd.Series(["1'234.5", "", "3"])
    parsed = parse_numbers(raw, raw.eq("").to_numpy(), "x", ParseOptions())
    assert parsed.values.iloc[0] == 1234.5 and pd.isna(parsed.values.iloc[1]) and not parsed.not_number.any()
    with pytest.raises(FormatError, match="--decimal"):
        ParseOptions(decimal=";")


# -- dates -------------------------------------------------------------------------------------------------------
def test_one_date_order_per_column_decided_by_the_whole_column(tmp_path, wh):
    import_transactions(wh, _csv(tmp_path, "d.csv", ["1.00", "2.00"], ["01/02/2025", "13/01/2025"]))
    assert _dates(wh) == ["2025-02-01", "2025-01-13"]  # 13/01 proves day-first, so 01/02 is 1 February
    import_transactions(wh, _csv(tmp_path, "m.csv", ["1.00", "2.00"], ["01/02/2025 10:00", "12/31/2025"]), replace=True)
    assert _dates(wh) == ["2025-01-02", "2025-12-31"]


def test_ambiguous_or_mixed_date_orders_are_refused_naming_the_options(tmp_path, wh):
    path = _csv(tmp_path, "a.csv", ["1.00", "2.00"], ["01/02/2025", "03/04/2025"])
    with pytest.raises(DataImportError) as err:
        import_transactions(wh, path)
    assert "column timestamp" in str(err.value) and "--dayfirst" in str(err.value)
    assert "--date-format" in str(err.value) and "\n" not in str(err.value)
    import_transactions(wh, path, options=ParseOptions(dayfirst=False))
    assert _dates(wh) == ["2025-01-02", "2025-03-04"]
    import_transactions(wh, path, replace=True, options=ParseOptions(date_format="%d/%m/%Y"))
    assert _dates(wh) == ["2025-02-01", "2025-04-03"]
    with pytest.raises(DataImportError, match=r"mixes date orders: '13/01/2025' is day-first, '01/13/2025'"):
        import_transactions(wh, _csv(tmp_path, "x.csv", ["1.00", "2.00"], ["13/01/2025", "01/13/2025"]))


def test_declared_day_order_rejects_contradicting_rows():
    parsed = parse_datetimes(pd.Series(["13/01/2025", "01/13/2025"]), "t", ParseOptions(dayfirst=True))
    assert parsed.iloc[0] == pd.Timestamp("2025-01-13", tz="UTC") and pd.isna(parsed.iloc[1])


# -- encodings and layouts --------------------------------------------------------------------------------------
TEXT = "customer_id,timestamp,amount,description\n1,2025-01-01,2.50,Caf\u00e9 cr\u00e8me\n2,2025-01-02,3.00,Th\u00e9\n"


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be"])
def test_boms_and_utf16_are_detected(tmp_path, wh, encoding):
    path = tmp_path / "e.csv"
    path.write_bytes(TEXT.encode(encoding))
    report = import_transactions(wh, path, {"product_name": "description", "product_id": "description"})
    assert report.written["orders"] == 2
    titles = wh.query_df(wh.render("SELECT title FROM {products} ORDER BY title"))["title"].tolist()
    assert titles == ["Caf\u00e9 cr\u00e8me", "Th\u00e9"]


def test_latin1_is_refused_naming_encoding_unless_declared(tmp_path, wh):
    path = tmp_path / "l.csv"
    path.write_bytes(TEXT.encode("latin-1"))
    with pytest.raises(DataImportError, match=r"not UTF-8 \(byte 0xe9 on line 2.*--encoding latin-1"):
        import_transactions(wh, path)
    assert detect_encoding(path, "latin-1") == "latin-1"
    import_transactions(
        wh, path, {"product_name": "description", "product_id": "description"}, options=ParseOptions(encoding="latin-1")
    )
    assert wh.row_count("products", "title = 'Th\u00e9'") == 1


def test_whitespace_separated_text_with_quantity_names(tmp_path, wh, caplog):
    path = tmp_path / "cdnow.txt"
    path.write_text(
        "customer_id   date      number_of_cds  amount  store\n"
        "00001  19970101   1   11.77  a\n00002  19970112   5   77.00  b\n"
    )
    caplog.set_level(logging.INFO, logger="pipelines.data.importers")
    report = import_transactions(wh, path)
    assert report.columns["quantity"] == "number_of_cds" and report.written["orders"] == 2
    assert wh.row_count("order_items", "quantity = 5 AND unit_price = 15.4") == 1
    assert _dates(wh) == ["1997-01-01", "1997-01-12"]
    assert any("ignored column(s)" in r.getMessage() and "store" in r.getMessage() for r in caplog.records)


def test_qty_is_the_quantity(tmp_path, wh):
    path = tmp_path / "q.csv"
    path.write_text("customer_id,timestamp,unit_price,qty\n1,2025-01-01,2.00,3\n")
    report = import_transactions(wh, path)
    assert report.columns["quantity"] == "qty" and _amounts(wh) == [6.0]


def test_headerless_file_is_refused_naming_columns_option(tmp_path, wh):
    path = tmp_path / "cdnow.txt"
    path.write_text("00001 19970101 1 11.77\n00002 19970112 5 77.00\n")
    with pytest.raises(DataImportError, match="looks like data, not a header.*--columns"):
        import_transactions(wh, path)
    options = ParseOptions(header=("customer_id", "timestamp", "quantity", "amount"))
    assert import_transactions(wh, path, options=options).written["orders"] == 2


def test_cli_format_options_and_one_line_refusal(tmp_path, monkeypatch, caplog):
    from pipelines.cli.main import main

    monkeypatch.setenv("CHURN_WAREHOUSE_URL", f"duckdb:///{tmp_path}/cli.duckdb")
    path = _csv(tmp_path, "a.csv", ["1.234,5", "1.234"], ["01/02/2025", "03/04/2025"])
    assert main(["import", "transactions", str(path)]) == ExitCode.IMPORT
    assert main(["import", "transactions", str(path), "--decimal", ","]) == ExitCode.IMPORT  # dates still open
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "--dayfirst" in errors[-1] and "\n" not in errors[-1]
    assert main(["import", "transactions", str(path), "--decimal", ",", "--thousands", ".", "--dayfirst"]) == 0
    latin = tmp_path / "l.csv"
    latin.write_bytes(TEXT.encode("latin-1"))
    assert main(["import", "transactions", str(latin), "--replace"]) == ExitCode.IMPORT
    assert main(["import", "transactions", str(latin), "--replace", "--encoding", "latin-1"]) == 0
    assert main(["import", "transactions", str(latin), "--encoding", "klingon"]) == ExitCode.IMPORT
