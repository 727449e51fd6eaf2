"""Turn a line as a client sends it into a canonical TransactionLine, or say why not.

Accepted shapes (PRODUCT.md, "Data contract"): Kaggle column names (`InvoiceNo`) or
snake_case (`invoice_no`); numbers as ints, floats or numeric strings; dates as
`12/1/2010 8:26`, `2010-12-01 08:26:00`, ISO 8601, or the epoch milliseconds that
pandas' `to_json()` writes for datetime columns.

This runs once per line on the hot path, so values that repeat a lot (dates, prices,
countries) are parsed once and cached.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc

from shopstream.domain.columnar import FIELD_TYPES
from shopstream.domain.line import FieldError, TransactionLine

MAX_TEXT = {"stock_code": 32, "description": 200, "country": 64}
# Bounds keep every line total and any realistic sum within 64-bit integers.
MAX_QUANTITY = 1_000_000
MAX_PRICE_MILLI = 1_000_000_000  # one million in money units
EVENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{1,128}\Z")  # \Z: "$" would let a final newline in
INVOICE_NO_PATTERN = re.compile(r"^[CA]?[0-9]{1,12}$")
CUSTOMER_ID_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{1,32}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_INT_TEXT = re.compile(r"^[+-]?[0-9]+$")
_INTEGRAL_FLOAT_TEXT = re.compile(r"^([+-]?[0-9]+)\.0*$")
_KAGGLE_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4}) (\d{1,2}):(\d{2})(?::(\d{2}))?$")
_EPOCH = datetime(1970, 1, 1)
MIN_YEAR, MAX_YEAR = 1970, 2100

CANONICAL_FIELDS = (
    "invoice_no",
    "stock_code",
    "description",
    "quantity",
    "invoice_date",
    "unit_price",
    "customer_id",
    "country",
)
REQUIRED_FIELDS = frozenset(CANONICAL_FIELDS) - {"description", "customer_id"}
# Kaggle headers and snake_case both normalise to the same key: lower case, no "_".
_ALIASES = {f.replace("_", ""): f for f in CANONICAL_FIELDS} | {"eventid": "event_id"}
_key_cache: dict[str, str | None] = {}


class Invalid(ValueError):
    """A field value that cannot be accepted; the message is the reason shown to users."""


def canonical_key(key: str) -> str | None:
    try:
        return _key_cache[key]
    except KeyError:
        found = _ALIASES.get(key.replace("_", "").replace(" ", "").lower()) if isinstance(key, str) else None
        if len(_key_cache) < 1000:
            _key_cache[key] = found
        return found


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _text(value: Any, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise Invalid(f"must be text, got {_show(value)}")
    text = str(value)
    if len(text) > MAX_TEXT[name]:
        raise Invalid(f"longer than {MAX_TEXT[name]} characters")
    if _CONTROL.search(text):
        raise Invalid("contains control characters")
    return text


def parse_invoice_no(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise Invalid(f"must be an invoice number, got {_show(value)}")
    text = str(value).strip().upper()
    if not INVOICE_NO_PATTERN.match(text):
        raise Invalid(
            f"unknown invoice number shape {_show(value)}: expected digits, "
            "optionally prefixed C (cancellation) or A (adjustment)"
        )
    return text


def parse_stock_code(value: Any) -> str:
    text = _text(value, "stock_code").strip()
    if not text:
        raise Invalid("must not be empty")
    return text


def parse_description(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return _text(value, "description")


def parse_country(value: Any) -> str:
    text = _text(value, "country").strip()
    if not text:
        raise Invalid("must not be empty")
    return text


def parse_quantity(value: Any) -> int:
    if isinstance(value, bool):
        raise Invalid(f"must be an integer, got {_show(value)}")
    if isinstance(value, int):
        quantity = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        quantity = int(value)
    elif isinstance(value, str) and _INT_TEXT.match(value.strip()):
        quantity = int(value.strip())  # int() alone trips on what str.strip() calls space, e.g. "\x1f"
    elif isinstance(value, str) and (m := _INTEGRAL_FLOAT_TEXT.match(value.strip())):
        quantity = int(m.group(1))
    else:
        raise Invalid(f"must be an integer, got {_show(value)}")
    if abs(quantity) > MAX_QUANTITY:
        raise Invalid(f"out of range (at most {MAX_QUANTITY:,} in absolute value)")
    return quantity


_price_cache: dict[Any, int] = {}


def parse_unit_price_milli(value: Any) -> int:
    """The unit price in thousandths; more than 3 decimal places is refused, not rounded."""
    key = (type(value), value)
    try:
        return _price_cache[key]
    except (KeyError, TypeError):
        pass
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise Invalid(f"must be a number, got {_show(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise Invalid(f"must be a finite number, got {_show(value)}")
    try:
        # repr() of a float is its shortest round-trip text: 2.55 -> "2.55", never 2.5499...
        amount = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except InvalidOperation:
        raise Invalid(f"must be a number, got {_show(value)}") from None
    if not amount.is_finite():
        raise Invalid(f"must be a finite number, got {_show(value)}")
    if abs(amount) > MAX_PRICE_MILLI // 1000:
        raise Invalid(f"out of range (at most {MAX_PRICE_MILLI // 1000:,})")
    scaled = amount.scaleb(3)
    if scaled != scaled.to_integral_value():
        raise Invalid(f"has more than 3 decimal places: {_show(value)}")
    milli = int(scaled)
    if len(_price_cache) < 100_000:
        _price_cache[key] = milli
    return milli


def parse_customer_id(value: Any) -> str | None:
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        raise Invalid(f"must be a customer id, got {_show(value)}")
    if isinstance(value, float):
        if not value.is_integer():  # also NaN's cousins: inf is not an integer either
            raise Invalid(f"must be a whole number or an id, got {_show(value)}")
        value = int(value)
    if isinstance(value, int):
        text = str(value)
        if not CUSTOMER_ID_PATTERN.match(text):  # negative, or too long for any sink's column
            raise Invalid(f"must be letters, digits, '-' or '_' (at most 32), got {_show(value)}")
        return text
    if not isinstance(value, str):
        raise Invalid(f"must be a customer id, got {_show(value)}")
    text = value.strip()
    if m := _INTEGRAL_FLOAT_TEXT.match(text):
        text = m.group(1)  # "17850.0", as pandas writes ids of a column with gaps
    if not text:
        return None
    if not CUSTOMER_ID_PATTERN.match(text):
        raise Invalid(f"must be letters, digits, '-' or '_' (at most 32), got {_show(value)}")
    return text


class DateParser:
    """Parses the accepted date shapes to naive shop-local datetimes, with a cache.

    Aware ISO timestamps are converted to the shop's time zone, then made naive.
    """

    def __init__(self, shop_timezone: str = "Europe/London") -> None:
        self.zone = ZoneInfo(shop_timezone)
        self._cache: dict[Any, datetime] = {}

    def __call__(self, value: Any) -> datetime:
        key = (type(value), value)
        try:
            return self._cache[key]
        except (KeyError, TypeError):
            pass
        parsed = self._parse(value)
        if not (MIN_YEAR <= parsed.year <= MAX_YEAR):
            raise Invalid(f"year {parsed.year} is out of range ({MIN_YEAR}-{MAX_YEAR})")
        if len(self._cache) > 200_000:
            self._cache.clear()
        self._cache[key] = parsed
        return parsed

    def _parse(self, value: Any) -> datetime:
        if isinstance(value, bool):
            raise Invalid(f"unparseable date {_show(value)}")
        if isinstance(value, (int, float)):
            # pandas to_json() writes datetimes as epoch milliseconds of the wall time
            if isinstance(value, float) and not math.isfinite(value):
                raise Invalid(f"unparseable date {_show(value)}")
            if not (1e11 <= abs(value) < 1e14):
                raise Invalid(f"unparseable date {_show(value)}: numbers are read as epoch milliseconds")
            try:
                return _EPOCH + timedelta(milliseconds=value)
            except OverflowError:  # before year 1 or after 9999
                raise Invalid(f"unparseable date {_show(value)}: out of range") from None
        if not isinstance(value, str):
            raise Invalid(f"unparseable date {_show(value)}")
        text = value.strip()
        if m := _KAGGLE_DATE.match(text):
            month, day, year, hour, minute, second = m.groups()
            try:
                return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0))
            except ValueError:
                raise Invalid(f"unparseable date {_show(value)}") from None
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise Invalid(
                f"unparseable date {_show(value)}: expected e.g. 12/1/2010 8:26, "
                "2010-12-01 08:26:00 or ISO 8601"
            ) from None
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(self.zone).replace(tzinfo=None)
        return parsed


_FIELD_PARSERS = {
    "invoice_no": parse_invoice_no,
    "stock_code": parse_stock_code,
    "description": parse_description,
    "quantity": parse_quantity,
    "unit_price": parse_unit_price_milli,
    "customer_id": parse_customer_id,
    "country": parse_country,
}
_CACHE_LIMIT = 50_000
# Per field, for parse_distinct; a full cache is dropped and refills with the values in use
# (memory stays flat on files of any size: 200,000 entries a field cost ~0.5 GB at 5 million lines).
_DISTINCT_CACHE_LIMIT = 20_000


@dataclass
class ParsedColumns:
    """Many lines parsed at once: the valid ones as columns, the others with reasons."""

    columns: dict[str, list[Any] | pa.Array]  # canonical field -> values of the valid lines, in order
    valid: list[int]  # input positions of the valid lines
    client_event_ids: list[str | None]  # per input line
    errors: dict[int, list[FieldError]]  # input position -> reasons


_MISS = object()


def take_client_event_ids(values: list[Any], client_ids: list[str | None], bad: set[int]) -> None:
    """Each line's own event id where it sent a valid one; the positions of invalid ones into `bad`."""
    for position, value in enumerate(values):
        if value is None:
            continue
        if type(value) is str and EVENT_ID_PATTERN.match(value):
            client_ids[position] = value
        else:
            bad.add(position)


_ARROW_TYPE_OF = {str: pa.string(), int: pa.int64(), float: pa.float64()}


def _typed(values: list[Any]) -> pa.Array | None:
    """The values as an Arrow array of their one Python type (None: nulls); None when the
    types are mixed or not text/integer/float (bool, objects: left to the other paths)."""
    kinds = set(map(type, values))
    kinds.discard(type(None))
    if not kinds:
        return pa.nulls(len(values))
    if len(kinds) > 1 or (arrow := _ARROW_TYPE_OF.get(kinds.pop())) is None:
        return None
    try:
        return pa.array(values, arrow)
    except (pa.ArrowInvalid, OverflowError):  # an integer beyond 64 bits
        return None


def _parse_column(values: list[Any], cache: dict, parse: Any, bad: set[int]) -> list[Any]:
    """Parse one field of every line; positions that fail are added to `bad`."""
    out = []
    append = out.append
    for position, value in enumerate(values):
        if type(value) is str:
            parsed = cache.get(value, _MISS)
            if parsed is not _MISS:
                append(parsed)
                continue
        try:
            parsed = parse(value)
        except Invalid:
            bad.add(position)
            append(None)
            continue
        if type(value) is str:
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[value] = parsed
        append(parsed)
    return out


class LineParser:
    """Parses one raw line (a JSON object or a CSV row as dict).

    Returns (line, client_event_id, errors): `line` is None when any field is invalid,
    and `errors` then names every invalid field (by the key the client used).

    Text values repeat a lot (countries, codes, dates, prices, invoice numbers), so
    each field keeps a cache of text -> parsed value; only `str` keys are cached,
    because 1, 1.0 and True are equal as dict keys but not as input.
    """

    def __init__(self, shop_timezone: str = "Europe/London") -> None:
        self.parse_date = DateParser(shop_timezone)
        parsers = dict(_FIELD_PARSERS, invoice_date=self.parse_date)
        self._fields = {name: (name, {}, parser) for name, parser in parsers.items()}
        self._fields["event_id"] = ("event_id", None, None)
        self._keys: dict[str, tuple | None] = {}  # the client's key -> field spec
        # parse_distinct's own parsers and caches, keyed by (type, value); its own DateParser,
        # whose cache is kept as small as ours
        self._distinct_parsers = dict(_FIELD_PARSERS, invoice_date=DateParser(shop_timezone))
        self._distinct_caches: dict[str, dict] = {f: {} for f in CANONICAL_FIELDS}

    def _spec(self, key: Any) -> tuple | None:
        field = canonical_key(key) if isinstance(key, str) else None
        spec = self._fields.get(field) if field else None
        if isinstance(key, str) and len(self._keys) < 1000:
            self._keys[key] = spec
        return spec

    def __call__(self, raw: Any) -> tuple[TransactionLine | None, str | None, list[FieldError]]:
        if type(raw) is not dict:
            return None, None, [FieldError("line", f"must be a JSON object, got {type(raw).__name__}")]
        values: dict[str, Any] = {}
        event_id = None
        errors: list[FieldError] = []
        for key, value in raw.items():
            try:
                spec = self._keys[key]
            except (KeyError, TypeError):
                spec = self._spec(key)
            if spec is None:
                continue  # not ours: kept in the raw line, ignored here
            field, cache, parse = spec
            if cache is None:  # event_id
                if value is not None:
                    if isinstance(value, str) and EVENT_ID_PATTERN.match(value):
                        event_id = value
                    else:
                        errors.append(FieldError(key, "must be 1-128 letters, digits or . _ : -"))
                continue
            if field in values:
                errors.append(FieldError(key, "given twice (under two names)"))
                continue
            if type(value) is str:
                try:
                    values[field] = cache[value]
                    continue
                except KeyError:
                    pass
            elif value is None and field in REQUIRED_FIELDS:
                values[field] = None
                errors.append(FieldError(key, "required field is null"))
                continue
            try:
                parsed = parse(value)
            except Invalid as invalid:
                values[field] = None
                errors.append(FieldError(key, str(invalid)))
                continue
            values[field] = parsed
            if type(value) is str:
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                cache[value] = parsed
        if len(values) != 8:
            for field in CANONICAL_FIELDS:
                if field not in values:
                    values[field] = None
                    if field in REQUIRED_FIELDS:
                        errors.append(FieldError(field, "required field is missing"))
        if errors:
            return None, event_id, errors
        return (
            TransactionLine(
                values["invoice_no"],
                values["stock_code"],
                values["description"],
                values["quantity"],
                values["invoice_date"],
                values["unit_price"],
                values["customer_id"],
                values["country"],
            ),
            event_id,
            errors,
        )

    def parse_many(self, raws: list[Any], pre_rejected: dict[int, FieldError] | None = None) -> ParsedColumns:
        """Column at a time when every line has the same keys (the usual request): as Arrow
        columns when each field's values have one type (_parse_arrow), else a field's values
        in one loop with its cache. Lines that fail, and any request whose lines differ in
        shape, go through the line parser, so the reasons are exactly the line parser's."""
        n = len(raws)
        specs = self._fast_specs(raws) if n > 8 and not pre_rejected else None
        if specs is None:
            return self._parse_rows(raws, pre_rejected)
        arrow = self._parse_arrow(raws, specs)
        if arrow is not None:
            return arrow
        bad: set[int] = set()
        columns: dict[str, list[Any]] = {}
        client_ids: list[str | None] = [None] * n
        for key, (field, cache, parse) in specs:
            values = [raw[key] for raw in raws]
            if cache is None:  # event_id
                take_client_event_ids(values, client_ids, bad)
                continue
            if field in REQUIRED_FIELDS:
                bad.update(i for i, v in enumerate(values) if v is None)
            columns[field] = _parse_column(values, cache, parse, bad)
        for field in CANONICAL_FIELDS:
            columns.setdefault(field, [None] * n)
        if not bad:
            return ParsedColumns(columns, list(range(n)), client_ids, {})
        errors = self.reasons(raws, bad, client_ids)
        valid = [i for i in range(n) if i not in bad]
        return ParsedColumns({f: [col[i] for i in valid] for f, col in columns.items()}, valid, client_ids, errors)

    def _parse_arrow(self, raws: list[Any], specs: list[tuple[str, tuple]]) -> ParsedColumns | None:
        """Each field's values as one Arrow array of their Python type, dictionary-encoded,
        through parse_distinct once per distinct value: the same parsers, so the same
        results as line by line. None when a field mixes types (the caller's loop then)."""
        n = len(raws)
        columns: dict[str, Any] = {}
        bad: set[int] = set()
        client_ids: list[str | None] = [None] * n
        for key, (field, cache, _) in specs:
            values = [raw[key] for raw in raws]
            if cache is None:  # event_id
                take_client_event_ids(values, client_ids, bad)
                continue
            typed = _typed(values)
            if typed is None:
                return None
            encoded = pc.dictionary_encode(typed)
            parsed, reasons = self.parse_distinct(field, encoded.dictionary.to_pylist())
            columns[field] = pa.array(parsed, FIELD_TYPES[field]).take(encoded.indices)
            failed = [code for code, reason in enumerate(reasons) if reason is not None]
            if failed:
                hit = pc.is_in(encoded.indices, value_set=pa.array(failed, encoded.indices.type))
                bad.update(pc.indices_nonzero(pc.fill_null(hit, False)).to_pylist())
            if encoded.indices.null_count and field in REQUIRED_FIELDS:
                bad.update(pc.indices_nonzero(pc.is_null(encoded.indices)).to_pylist())
        for field in CANONICAL_FIELDS:
            if field not in columns:
                columns[field] = pa.nulls(n, FIELD_TYPES[field])
        if not bad:
            return ParsedColumns(columns, list(range(n)), client_ids, {})
        errors = self.reasons(raws, bad, client_ids)
        valid = [i for i in range(n) if i not in bad]
        keep = pa.array(valid, pa.int64())
        return ParsedColumns({f: column.take(keep) for f, column in columns.items()}, valid, client_ids, errors)

    def reasons(self, raws: list[Any], bad: set[int], client_ids: list[str | None]) -> dict[int, list[FieldError]]:
        """The line parser's own reasons for the lines at the `bad` positions (a column at a
        time found them; these are the exact words), and their client event ids."""
        errors = {}
        for position in sorted(bad):
            _, client_id, line_errors = self(raws[position])
            errors[position] = line_errors
            client_ids[position] = client_id
        return errors

    def parse_distinct(self, field: str, values: list[Any]) -> tuple[list[Any], list[str | None]]:
        """Each of `values` (distinct values of one field, as a client sent them) through the
        field's parser: the parsed values (None where invalid) and the reasons (None where valid).
        What columnar parsing (files, and requests of uniform lines) runs once per distinct value."""
        parse = self._distinct_parsers[field]
        cache = self._distinct_caches[field]  # text -> result; other types by (type, value)
        required = field in REQUIRED_FIELDS
        out, why = [], []
        for value in values:
            key: Any = value if type(value) is str else (type(value), value)
            try:
                result = cache[key]
            except KeyError:
                result = _MISS
            except TypeError:  # unhashable (a list in a JSON line): parsed, not cached
                result, key = _MISS, None
            if result is _MISS:
                if value is None and required:
                    result = (None, "required field is null")
                else:
                    try:
                        result = (parse(value), None)
                    except Invalid as invalid:
                        result = (None, str(invalid))
                if len(cache) >= _DISTINCT_CACHE_LIMIT:
                    cache.clear()
                    if field == "invoice_date":
                        parse._cache.clear()  # DateParser's own cache, kept as small as ours
                if key is not None:
                    cache[key] = result
            out.append(result[0])
            why.append(result[1])
        return out, why

    def _fast_specs(self, raws: list[Any]) -> list[tuple[str, tuple]] | None:
        """The (key, field spec) pairs shared by every line, or None if the lines differ
        in shape, name a field twice, or lack a required field."""
        if not raws or type(raws[0]) is not dict:
            return None
        keys = tuple(raws[0])
        for raw in raws:
            if type(raw) is not dict or (len(raw) != len(keys)) or tuple(raw) != keys:
                return None
        specs, fields = [], set()
        for key in keys:
            try:
                spec = self._keys[key]
            except (KeyError, TypeError):
                spec = self._spec(key)
            if spec is None:
                continue
            if spec[0] in fields:
                return None
            fields.add(spec[0])
            specs.append((key, spec))
        if not REQUIRED_FIELDS <= fields:
            return None
        return specs

    def _parse_rows(self, raws: list[Any], pre_rejected: dict[int, FieldError] | None) -> ParsedColumns:
        columns: dict[str, list[Any]] = {field: [] for field in CANONICAL_FIELDS}
        invoice_no, stock_code, description, quantity, invoice_date, unit_price, customer_id, country = (
            columns[field].append for field in CANONICAL_FIELDS
        )
        valid, client_ids, errors = [], [], {}
        for position, raw in enumerate(raws):
            if pre_rejected and position in pre_rejected:
                client_ids.append(None)
                errors[position] = [pre_rejected[position]]
                continue
            line, client_id, line_errors = self(raw)
            client_ids.append(client_id)
            if line is None:
                errors[position] = line_errors
                continue
            valid.append(position)
            invoice_no(line.invoice_no)
            stock_code(line.stock_code)
            description(line.description)
            quantity(line.quantity)
            invoice_date(line.invoice_date)
            unit_price(line.unit_price_milli)
            customer_id(line.customer_id)
            country(line.country)
        return ParsedColumns(columns, valid, client_ids, errors)
