import pytest


def test_benchmark_reports_every_backend(load_benchmark, capsys):
    pytest.importorskip("faiss")
    bench = load_benchmark("retrieval")
    args = bench.parse_args(
        ["--size", "600", "--queries", "40", "--dim", "8", "--repeats", "1", "--map-at-r"]
    )
    rows = bench.run(args)
    assert [row["backend"] for row in rows] == ["exact", "faiss-hnsw", "faiss-ivf"]
    assert rows[0]["neighbour_recall"] == 1.0
    for row in rows:
        assert row["queries_per_s"] > 0 and row["build_s"] >= 0
        assert 0.9 <= row["neighbour_recall"] <= 1.0
        assert 0 <= row["label_recall"] <= 1 and 0 <= row["map_at_r"] <= 1
    printed = capsys.readouterr().out
    assert "queries/s" in printed and "faiss-ivf options" in printed
