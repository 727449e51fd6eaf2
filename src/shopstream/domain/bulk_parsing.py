"""Validating a file's rows a column at a time, with exactly the ingest API's rules.

Values repeat a lot in transaction files (a few thousand prices, dates, countries,
codes per hundred thousand lines), so each column is dictionary-encoded (Arrow, in
C++) and LineParser's own field parsers run once per distinct value; results are then
spread back over the rows with `take`. The rules, reasons and parsed values are thus
literally the row-by-row parser's, at a fraction of the cost; tests/unit check the
two against each other on tricky rows. Headers the fast path does not cover (a column
given twice under two names, an event_id column) use LineParser row by row.

Most distinct values of a text column have a plain shape whose parse is the value
itself (`536365`, `85123A`, `2010-12-01 08:26:00`, `17850.0` -> `17850`): those are
recognised and converted by Arrow kernels (RE2 and strptime, without the GIL), and only
the others go through LineParser's parsers (`_PLAIN`). That was ~half a bulk load's
Python time, which the other sinks' threads wait for.

`raw` (the line as received) is the JSON object `send` would post for the row, built
the same way: each distinct value is JSON-encoded once (orjson, or Arrow for text that
needs no escaping) and the pieces joined.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from shopstream.domain.columnar import (
    EVENT_SCHEMA,
    FIELD_TYPES,
    EventTable,
    empty_table,
    events_to_table,
    framed_texts,
    json_distinct_texts,
    json_value_texts,
    timestamp_texts,
)
from shopstream.domain.intake import take_in
from shopstream.domain.line import DeadLetter, FieldError
from shopstream.domain.parsing import (
    CANONICAL_FIELDS,
    MAX_QUANTITY,
    MAX_TEXT,
    MAX_YEAR,
    MIN_YEAR,
    REQUIRED_FIELDS,
    LineParser,
    canonical_key,
)


def normalise_cell(value: Any) -> Any:
    """Typed cells (Parquet, XLSX) as a client would send them in JSON."""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


@dataclass
class ParsedChunk:
    table: EventTable  # accepted rows, EVENT_SCHEMA
    dead_letters: list[DeadLetter]


class ColumnParser:
    """Parses RowChunks of one file (same header throughout)."""

    def __init__(self, shop_timezone: str = "Europe/London") -> None:
        self.line_parser = LineParser(shop_timezone)

    @staticmethod
    def columnar_plan(header: Sequence[str]) -> dict[str, int] | None:
        """field -> column index, or None when the header needs the row-wise path."""
        if len(set(header)) != len(header) or "event_id" in header:
            return None
        plan: dict[str, int] = {}
        for i, name in enumerate(header):
            field = canonical_key(name)
            if field is None:
                continue
            if field == "event_id" or field in plan:
                return None
            plan[field] = i
        return plan

    def parse(
        self, header: Sequence[str], columns: Sequence[pa.Array], event_ids: pa.Array,
        rows: pa.Array, received_at: dt.datetime, source: str,
    ) -> ParsedChunk:
        plan = self.columnar_plan(header)
        if plan is None:
            return self.parse_rowwise(header, columns, event_ids, rows, received_at, source)
        n = len(event_ids)
        parsed: dict[str, pa.Array] = {}
        reasons: list[tuple[str, pa.Array]] = []  # (the client's column name, reason or null), header order
        raw = JsonObjects(header, event_ids)
        for i, name in enumerate(header):
            encoded = pc.dictionary_encode(columns[i])
            field = canonical_key(name)
            text = pa.types.is_string(encoded.dictionary.type)  # else typed cells (Parquet, XLSX)
            if text:
                raw.add_texts(encoded.dictionary, encoded.indices)
            else:
                values = [normalise_cell(v) for v in encoded.dictionary.to_pylist()]
                raw.add(values, encoded.indices)
            if field is None or plan.get(field) != i:
                continue
            value_array, reason_array = (self._parse_texts(field, encoded.dictionary) if text
                                         else self._parse_values(field, values))
            parsed[field] = value_array.take(encoded.indices)
            reason = reason_array.take(encoded.indices)
            if field in REQUIRED_FIELDS and encoded.indices.null_count:
                reason = pc.if_else(pc.is_null(encoded.indices), "required field is null", reason)
            reasons.append((name, reason))
        for field in CANONICAL_FIELDS:
            if field not in plan:
                parsed[field] = pa.nulls(n, FIELD_TYPES[field])
                if field in REQUIRED_FIELDS:
                    reasons.append((field, pa.array(["required field is missing"] * n, pa.string())))
        raw = raw.texts()

        bad = pa.repeat(False, n)
        for _, reason in reasons:
            if reason.null_count < n:
                bad = pc.or_(bad, pc.is_valid(reason))
        table = pa.Table.from_arrays(
            [
                event_ids,
                pa.repeat(pa.scalar(received_at, pa.timestamp("us")), n),
                pa.repeat(pa.scalar(source, pa.string()), n),
                parsed["invoice_no"],
                parsed["stock_code"],
                parsed["description"],
                parsed["quantity"],
                parsed["invoice_date"],
                parsed["unit_price"],
                parsed["customer_id"],
                parsed["country"],
                raw,
            ],
            schema=EVENT_SCHEMA,
        )
        if not pc.any(bad).as_py():
            return ParsedChunk(table, [])
        return ParsedChunk(table.filter(pc.invert(bad)), self._dead_letters(bad, reasons, table, rows))

    @staticmethod
    def _dead_letters(bad: pa.Array, reasons: list[tuple[str, pa.Array]], table: pa.Table,
                      rows: pa.Array) -> list[DeadLetter]:
        """The rejected rows (few, usually) as objects: every reason, in the header's order."""
        positions = pc.indices_nonzero(bad)
        picked = [(name, reason.take(positions).to_pylist()) for name, reason in reasons]
        ids = table["event_id"].take(positions).to_pylist()
        numbers = rows.take(positions).to_pylist()
        raws = table["raw"].take(positions).to_pylist()
        received_at, source = table["received_at"][0].as_py(), table["source"][0].as_py()
        return [
            DeadLetter(ids[k], received_at, source, numbers[k],
                       tuple(FieldError(name, r[k]) for name, r in picked if r[k] is not None),
                       orjson.loads(raws[k]))
            for k in range(len(ids))
        ]

    def _parse_values(self, field: str, values: list[Any]) -> tuple[pa.Array, pa.Array]:
        """Each distinct value through LineParser's own parser for the field (cached)."""
        out, why = self.line_parser.parse_distinct(field, values)
        return pa.array(out, FIELD_TYPES[field]), pa.array(why, pa.string())

    def _parse_texts(self, field: str, texts: pa.Array) -> tuple[pa.Array, pa.Array]:
        """`_parse_values` of a text column's distinct values: the plain ones by Arrow, the rest
        by LineParser. Parsed values, and reasons (null where valid)."""
        plain = _PLAIN.get(field)
        if plain is None:
            return self._parse_values(field, texts.to_pylist())
        values, ok = plain(texts)
        ok = pc.fill_null(ok, False)
        if pc.all(ok).as_py():
            return values, pa.nulls(len(texts), pa.string())
        others = pc.invert(ok)
        out, why = self._parse_values(field, texts.filter(others).to_pylist())
        return (pc.replace_with_mask(values, others, out.cast(values.type)),
                pc.replace_with_mask(pa.nulls(len(texts), pa.string()), others, why))

    def parse_rowwise(
        self, header: Sequence[str], columns: Sequence[pa.Array], event_ids: pa.Array,
        rows: pa.Array, received_at: dt.datetime, source: str,
    ) -> ParsedChunk:
        """The reference: each row as the dict `send` posts, through LineParser."""
        raws = rowwise_dicts(header, columns, event_ids)
        numbers = rows.to_pylist()
        ids = event_ids.to_pylist()
        by_index = dict(zip(range(len(numbers)), numbers))
        intake = take_in(raws, self.line_parser, received_at, source, event_id_for=ids.__getitem__)
        letters = [
            DeadLetter(d.event_id, d.received_at, d.source, by_index[d.index], d.errors, d.raw)
            for d in intake.dead_letters
        ]
        table = events_to_table(intake.events) if intake.events else empty_table()
        return ParsedChunk(table, letters)


class JsonObjects:
    """Each row as the JSON object `send` posts for it ({header name: cell, ..., "event_id": id},
    what orjson.dumps makes of the row's dict), from each column's distinct values: every
    distinct value is encoded once (orjson) and the pieces are joined by Arrow."""

    def __init__(self, header: Sequence[str], event_ids: pa.Array) -> None:
        self.header, self.event_ids = header, event_ids
        self.parts: list[Any] = []

    def add(self, distinct: list[Any], indices: pa.Array) -> None:
        """The next column: its distinct values (as a client sends them) and each row's index."""
        self._add(json_distinct_texts(distinct), indices)

    def add_texts(self, distinct: pa.Array, indices: pa.Array) -> None:
        """The next column, of text: its distinct values (Arrow strings) and each row's index."""
        self._add(json_value_texts(distinct), indices)

    def _add(self, texts: pa.Array, indices: pa.Array) -> None:
        # the key goes before each distinct value's text, not in a part of its own: an
        # element-wise join costs by the part (19 -> 11 parts: half the time)
        key = ("," if self.parts else "{") + orjson.dumps(self.header[len(self.parts)]).decode() + ":"
        self.parts.append(framed_texts(texts, indices, key))

    def texts(self) -> pa.Array:
        # event ids need no escaping: letters, digits and . _ : - only
        ending = [pa.scalar(("," if self.parts else "{") + '"event_id":"'), self.event_ids, pa.scalar('"}')]
        return pc.binary_join_element_wise(*self.parts, *ending, "")


# -- plain shapes ---------------------------------------------------------------------
# For each field, the distinct texts whose LineParser result is the text itself (or a
# simple function of it) and how Arrow computes it: (values, ok) with ok false (or null)
# where LineParser must judge. Each pattern is narrower than the rule it stands for (no
# surrounding space, ASCII where the rule strips Unicode space), so the two agree
# wherever ok is true; tests/unit/test_bulk_parsing.py checks them against each other.

def _matching(pattern: str) -> Callable[[pa.Array], tuple[pa.Array, pa.Array]]:
    return lambda texts: (texts, pc.match_substring_regex(texts, pattern))


def _plain_quantity(texts: pa.Array) -> tuple[pa.Array, pa.Array]:
    ok = pc.match_substring_regex(texts, r"^-?[0-9]{1,7}$")
    values = pc.if_else(ok, texts, "0").cast(pa.int64())
    return values, pc.and_(ok, pc.less_equal(pc.abs(values), MAX_QUANTITY))


def _plain_customer_id(texts: pa.Array) -> tuple[pa.Array, pa.Array]:
    # "17850.0" (pandas writes ids of a column with gaps as floats) -> "17850"
    as_float = pc.match_substring_regex(texts, r"^[0-9]{1,32}\.0*$")
    values = pc.if_else(as_float, pc.replace_substring_regex(texts, r"\.0*$", ""), texts)
    return values, pc.or_(as_float, pc.match_substring_regex(texts, r"^[A-Za-z0-9_\-]{1,32}$"))


_ISO_SECONDS = "%Y-%m-%d %H:%M:%S"


def _plain_date(texts: pa.Array) -> tuple[pa.Array, pa.Array]:
    shaped = pc.match_substring_regex(texts, r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$")
    values = pc.strptime(pc.if_else(shaped, texts, "2000-01-01 00:00:00"), _ISO_SECONDS, "us", error_is_null=True)
    year = pc.year(values)
    # written back it must be the same text (no lenient day or hour), and in the year range
    ok = pc.and_(pc.and_(shaped, pc.equal(timestamp_texts(values), texts)),
                 pc.and_(pc.greater_equal(year, MIN_YEAR), pc.less_equal(year, MAX_YEAR)))
    return values, ok


_PLAIN: dict[str, Callable[[pa.Array], tuple[pa.Array, pa.Array]]] = {
    "invoice_no": _matching(r"^[CA]?[0-9]{1,12}$"),
    # printable ASCII, no space at either end (LineParser strips), within the length limits
    "stock_code": _matching(r"^[!-~](?:[ -~]{0,%d}[!-~])?$" % (MAX_TEXT["stock_code"] - 2)),
    "country": _matching(r"^[!-~](?:[ -~]{0,%d}[!-~])?$" % (MAX_TEXT["country"] - 2)),
    # kept as written (not stripped): any text without control characters (RE2 counts characters)
    "description": _matching(r"^[^\x00-\x1f\x7f]{1,%d}$" % MAX_TEXT["description"]),
    "quantity": _plain_quantity,
    "customer_id": _plain_customer_id,
    "invoice_date": _plain_date,
}


def json_objects(header: Sequence[str], columns: Sequence[pa.Array], event_ids: pa.Array) -> pa.Array:
    """The rows of text columns (a CSV's) as `send` posts them: see JsonObjects."""
    objects = JsonObjects(header, event_ids)
    for column in columns:
        encoded = pc.dictionary_encode(column)
        objects.add_texts(encoded.dictionary, encoded.indices)
    return objects.texts()


def rowwise_dicts(header: Sequence[str], columns: Sequence[pa.Array], event_ids: pa.Array) -> list[dict]:
    values = [[normalise_cell(v) for v in c.to_pylist()] for c in columns]
    out = []
    for event_id, row in zip(event_ids.to_pylist(), zip(*values) if values else [()] * len(event_ids)):
        raw = dict(zip(header, row))
        raw["event_id"] = event_id
        out.append(raw)
    return out
