"""The progress bar's total: a file's lines estimated from its first MiB."""

import gzip

from shopstream.files import estimated_lines


def lines(n: int, first: int = 0) -> bytes:
    return b"".join(b"536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,%d\n" % i for i in range(first, first + n))


def test_plain_and_gzip_files_small_enough_to_read_whole_are_counted(tmp_path):
    (tmp_path / "a.csv").write_bytes(lines(1000))
    (tmp_path / "a.csv.gz").write_bytes(gzip.compress(lines(1000)))
    assert estimated_lines(tmp_path / "a.csv") == 1000
    assert estimated_lines(tmp_path / "a.csv.gz") == 1000


def test_big_files_are_estimated_within_a_few_percent(tmp_path):
    data = lines(200_000)  # ~11 MB
    (tmp_path / "b.csv").write_bytes(data)
    (tmp_path / "b.csv.gz").write_bytes(gzip.compress(data))
    for name in ("b.csv", "b.csv.gz"):
        assert abs(estimated_lines(tmp_path / name) - 200_000) < 10_000, name


def test_a_gzip_of_several_members_is_not_taken_for_its_last_member(tmp_path):
    members = b"".join(gzip.compress(lines(5_000, first=k * 5_000)) for k in range(40))
    (tmp_path / "c.csv.gz").write_bytes(members)
    assert 100_000 < estimated_lines(tmp_path / "c.csv.gz") < 400_000  # 200,000 lines
