"""The segment store: writes that cost what they change, damage found and repaired, threads, kill -9."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import CARDIFF, REPO, REPORTS, WREXHAM, NEW_REPORT

QUESTION = "How many case files were reviewed in Cardiff?"
# Names no council: searched over the whole corpus, so through Chroma (a question naming a council
# is searched within its reports' own vectors, without Chroma).
WHOLE_CORPUS_QUESTION = "How many case files did the inspectors review?"


def _copy(built_index: Path, tmp_path: Path) -> Path:
    index_dir = tmp_path / "index"
    shutil.copytree(built_index, index_dir)
    return index_dir


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AROLWG_")}
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=600)


def _live(index_dir: Path) -> dict:
    return json.loads((index_dir / (index_dir / "CURRENT").read_text().strip() / "manifest.json").read_text())


def test_index_does_not_import_rag():
    code = "import sys, index, index.build, index.store; print(sorted(m for m in sys.modules if m.split('.')[0] == 'rag'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert (out.returncode, out.stdout.strip()) == (0, "[]")


def test_adding_a_report_embeds_only_that_report(tmp_path, built_index, settings, embeddings, monkeypatch):
    from index import update_index

    index_dir = _copy(built_index, tmp_path)
    before = {r: m["segment"] for r, m in _live(index_dir)["reports"].items()}
    encoded: list[str] = []
    real = type(embeddings).encode_with_spans

    def spy(self, texts, spans):
        encoded.extend(texts)
        return real(self, texts, spans)

    monkeypatch.setattr(type(embeddings), "encode_with_spans", spy)
    new = tmp_path / "ciw-powys-2021-03.txt"
    new.write_text(NEW_REPORT)
    done = update_index(index_dir, add=[new], settings=settings, embeddings=embeddings)
    after = {r: m["segment"] for r, m in _live(index_dir)["reports"].items()}
    assert (done.added, after[CARDIFF], after[WREXHAM]) == (["ciw-powys-2021-03.txt"], before[CARDIFF], before[WREXHAM])
    n_new = _live(index_dir)["reports"]["ciw-powys-2021-03.txt"]["n_chunks"]
    assert len(encoded) == n_new  # the new report's passages, once each, and nothing else
    removed = update_index(index_dir, remove=["ciw-powys-2021-03.txt"], settings=settings, embeddings=embeddings)
    assert (removed.removed, len(encoded)) == (["ciw-powys-2021-03.txt"], n_new)  # removing embeds nothing


def test_a_report_added_again_reuses_its_segment(tmp_path, built_index, settings, embeddings):
    from index import update_index

    index_dir = _copy(built_index, tmp_path)
    new = tmp_path / "ciw-powys-2021-03.txt"
    new.write_text(NEW_REPORT)
    update_index(index_dir, add=[new], settings=settings, embeddings=embeddings)
    seg = _live(index_dir)["reports"][new.name]["segment"]
    update_index(index_dir, remove=[new.name], settings=settings, embeddings=embeddings)
    again = update_index(index_dir, add=[new], settings=settings, embeddings=embeddings)
    assert (again.added, _live(index_dir)["reports"][new.name]["segment"]) == ([new.name], seg)


def test_sentence_vectors_come_from_the_passage_pass_and_match_the_sentence(built_index, settings):
    """Late chunking: each sentence's vector is closest to its own text among its passage's."""
    from index.embeddings import get_embeddings
    from index.store import open_store

    store = open_store(built_index, settings)
    emb = get_embeddings(settings)
    rows = [r for c in store.chunks[:40] for r in store.sent_rows[c.id]][:60]
    own = emb.encode([store.gen.sentences[r].text for r in rows])
    sims = (store.gen.sent_vecs[rows] * own).sum(axis=1)
    assert float(np.median(sims)) > 0.75


def test_sentences_are_held_as_half_precision_and_slices_of_their_passages(built_index, settings):
    """The generation keeps each sentence's bounds, not its text, and its vector in half precision:
    what it reads back matches the segment files (texts exactly, vectors and products to 1e-3)."""
    from index.store import open_store, read_segment, segments_dir

    store = open_store(built_index, settings)
    rid = sorted(store.reports)[0]
    seg = read_segment(built_index, store.gen.segments[rid])
    first = store.chunk_pos[seg.chunks[0].id]
    rows = list(range(int(store._sent_first[first]), int(store._sent_first[first]) + len(seg.sentences)))
    assert [store.gen.sentences[r] for r in rows] == seg.sentences
    assert store.gen.sent_vecs.nbytes == 2 * 384 * len(store.sent_chunk)
    got = store.gen.sent_vecs[rows]
    assert got.dtype == np.float32 and got.shape == seg.sent_vecs.shape
    assert float(np.abs(got - seg.sent_vecs).max()) < 1e-3
    q = seg.sent_vecs[3]
    sims = store.gen.sent_vecs @ q
    assert sims.dtype == np.float32 and sims.shape == (len(store.sent_chunk),)
    assert float(np.abs(sims[rows] - seg.sent_vecs @ q).max()) < 2e-3
    assert int(np.argmax(sims[rows])) == 3
    assert (segments_dir(built_index) / store.gen.segments[rid] / "sent_vecs.npy").is_file()


def test_scoped_search_filters_inside_the_stores(built_index, settings):
    from index.embeddings import get_embeddings
    from index.store import open_store

    store = open_store(built_index, settings)
    q = np.asarray(get_embeddings(settings).embed_query("case files reviewed"), dtype="float32")
    for search in (lambda ids: store.dense_search(q.tolist(), 10, ids), lambda ids: store.sentence_search(q, 10, ids),
                   lambda ids: store.keyword_search(["case", "file", "review"], 10, ids)):
        hits = search([WREXHAM])
        assert hits and {store.chunks[p].report_id for p, _ in hits} == {WREXHAM}
        assert search([]) == []
        assert {store.chunks[p].report_id for p, _ in search(None)} == {CARDIFF, WREXHAM}


def test_concurrent_first_queries_in_a_fresh_process_all_answer(built_index):
    code = f"""
import threading
from rag import query
out, errs = [], []
def ask():
    try:
        out.append(query({QUESTION!r}, index_dir={str(built_index)!r}).text)
    except Exception as exc:
        errs.append(repr(exc))
ts = [threading.Thread(target=ask) for _ in range(6)]
[t.start() for t in ts]; [t.join() for t in ts]
print(len(out), sum('50 case files' in t for t in out), errs)
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AROLWG_")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert r.stdout.strip().splitlines()[-1] == "6 6 []", r.stderr[-2000:]


@pytest.mark.parametrize(
    "damage, what",
    [
        ("segment-chunks", "the passages of ciw-cardiff-2020-12.txt cannot be read"),
        ("segment-vectors", "the passages of ciw-cardiff-2020-12.txt cannot be read"),
        ("vocabulary", "its vocabulary files cannot be read"),
        ("current-missing", "its live generation gen-000009 is missing"),
        ("chroma-deleted", "its vector store has no collection"),
    ],
)
def test_a_damaged_index_says_so_and_arolwg_index_upgrade_repairs_it(tmp_path, built_index, damage, what):
    index_dir = _copy(built_index, tmp_path)
    live = index_dir / (index_dir / "CURRENT").read_text().strip()
    seg = index_dir / "segments" / _live(index_dir)["reports"][CARDIFF]["segment"]
    if damage == "segment-chunks":
        data = (seg / "chunks.jsonl").read_bytes()
        (seg / "chunks.jsonl").write_bytes(data[: len(data) // 2])
    elif damage == "segment-vectors":
        data = (seg / "sent_vecs.npy").read_bytes()
        (seg / "sent_vecs.npy").write_bytes(data[: len(data) // 3])
    elif damage == "vocabulary":
        (live / "lexicon.json").write_text('{"idf": {"broken')
    elif damage == "current-missing":
        (index_dir / "CURRENT").write_text("gen-000009")
    elif damage == "chroma-deleted":
        shutil.rmtree(index_dir / "chroma")
    asked = _cli("ask", WHOLE_CORPUS_QUESTION if damage.startswith("chroma") else QUESTION, "--index", str(index_dir))
    assert asked.returncode == 2 and "Traceback" not in asked.stderr
    assert asked.stderr.startswith(f"arolwg: The index at {index_dir} is damaged ({what}")
    assert asked.stderr.rstrip().endswith("which rebuilds what is damaged from the report texts it holds.")
    checked = _cli("check", "--index", str(index_dir))
    assert checked.returncode == 1 and "Traceback" not in checked.stderr, checked.stdout + checked.stderr
    repaired = _cli("index", "--index", str(index_dir), "--upgrade")
    assert repaired.returncode == 0, repaired.stderr
    assert _cli("check", "--index", str(index_dir)).stdout == f"The index at {index_dir} is sound.\n"
    answer = _cli("ask", QUESTION, "--index", str(index_dir))
    assert answer.returncode == 0 and "50 case files" in answer.stdout, answer.stderr


def test_a_chroma_database_overwritten_with_garbage_is_moved_aside_and_rebuilt(tmp_path, built_index):
    index_dir = _copy(built_index, tmp_path)
    (index_dir / "chroma" / "chroma.sqlite3").write_bytes(b"not a database" * 100)
    asked = _cli("ask", WHOLE_CORPUS_QUESTION, "--index", str(index_dir))
    assert asked.returncode == 2 and asked.stderr.startswith(f"arolwg: The index at {index_dir} is damaged (its vector store")
    assert _cli("index", "--index", str(index_dir), "--upgrade").returncode == 0
    assert "50 case files" in _cli("ask", QUESTION, "--index", str(index_dir)).stdout
    assert len(list(index_dir.glob("chroma.damaged-*"))) == 1  # kept, never deleted


def test_kill_9_during_a_write_leaves_the_last_index_answering_and_the_next_write_completes(tmp_path, built_index, settings, embeddings):
    from index import list_reports, update_index
    from rag import query

    index_dir = _copy(built_index, tmp_path)
    folder = tmp_path / "more"
    folder.mkdir()
    for n in range(6):  # enough work that the kill lands midway
        (folder / f"newport-{n}.txt").write_text((REPORTS / CARDIFF).read_text().replace("Cardiff", f"Newport{n}"))
    code = f"from index import update_index; import glob; update_index({str(index_dir)!r}, add=sorted(glob.glob({str(folder)!r} + '/*.txt')))"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AROLWG_")}
    old_segments = set(os.listdir(index_dir / "segments"))
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env)
    deadline = time.monotonic() + 300
    # Killed as soon as the write has put its first new segment on disk, well before its commit.
    while time.monotonic() < deadline and proc.poll() is None and not set(os.listdir(index_dir / "segments")) - old_segments:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (index_dir / "CURRENT").read_text() == "gen-000001"
    ans = query(QUESTION, index_dir=index_dir, settings=settings, embeddings=embeddings)
    assert "50 case files" in ans.text
    done = update_index(index_dir, add=sorted(folder.glob("*.txt")), settings=settings, embeddings=embeddings)
    assert sorted(done.added) == [f"newport-{n}.txt" for n in range(6)]
    assert len(list_reports(index_dir, settings)) == 8
    assert not list((index_dir / "segments").glob("*.tmp-*"))
    from index.build import check_index

    assert check_index(index_dir, settings) == []


def test_a_report_with_nothing_to_quote_is_refused_not_indexed_empty(tmp_path, built_index, settings, embeddings):
    from index import list_reports, update_index

    index_dir = _copy(built_index, tmp_path)
    furniture = tmp_path / "furniture.txt"
    # Four pages of nothing but a running header and a page number: cleaning sets every line aside.
    header = "Care Inspectorate Wales: inspection of social services for children and adults, Anytown Council"
    furniture.write_text("\f".join(f"{header}\n{n}\n" for n in range(1, 5)), encoding="utf-8")
    done = update_index(index_dir, add=[furniture], settings=settings, embeddings=embeddings)
    assert (done.added, done.failed) == ([], [(
        "furniture.txt",
        "furniture.txt has nothing to index once its page headers, footers and numbers are set aside: "
        "check the file holds the report's text, or export it again.",
    )])
    assert [r.report_id for r in list_reports(index_dir, settings)] == [CARDIFF, WREXHAM]


def test_a_real_full_disk_is_one_sentence_and_the_old_index_keeps_answering(tmp_path, built_index, settings, embeddings):
    from index import update_index
    from rag import query
    from rag.errors import DiskFullError

    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(small)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here to fill: {mounted.stderr.strip()}")
    try:
        index_dir = small / "index"
        shutil.copytree(built_index, index_dir)
        free = shutil.disk_usage(small).free
        (small / "filler").write_bytes(b"\0" * max(free - 300_000, 0))  # leave less than a new report needs
        extra = tmp_path / "newport.txt"
        extra.write_text((REPORTS / CARDIFF).read_text().replace("Cardiff", "Newport"))
        with pytest.raises(DiskFullError) as exc:
            update_index(index_dir, add=[extra], settings=settings, embeddings=embeddings)
        assert str(exc.value) == (
            f"The disk is full, so the index at {index_dir} could not be written; the previous index is kept and "
            "still answers: free some disk space and try again."
        )
        assert (index_dir / "CURRENT").read_text() == "gen-000001"
        assert "50 case files" in query(QUESTION, index_dir=index_dir, settings=settings, embeddings=embeddings).text
        (small / "filler").unlink()
        assert update_index(index_dir, add=[extra], settings=settings, embeddings=embeddings).added == ["newport.txt"]
    finally:
        subprocess.run(["umount", "-l", str(small)], capture_output=True)


def test_a_scoped_search_is_exact_over_its_reports_alone_and_asks_chroma_nothing(dated_index, settings, monkeypatch):
    """Within a scope, passage and sentence search compute only the scope's runs of rows: the same
    ranking as every vector scored and the others masked out, and Chroma (whose filtered HNSW search
    misses passages of a small scope in a large corpus) is not asked."""
    from index.embeddings import get_embeddings
    from index.store import IndexStore, open_store

    store = open_store(dated_index, settings)
    rids = sorted(store.reports)
    scope = [rids[0], rids[2], rids[3], rids[-1]]  # runs of rows with gaps between them
    monkeypatch.setattr(IndexStore, "collection", lambda self: pytest.fail("Chroma asked for a scoped search"))
    q = np.asarray(get_embeddings(settings).embed_query("advocacy for children"), dtype="float32")
    inside = np.isin([c.report_id for c in store.chunks], scope)
    assert list(store.chunk_positions(scope)) == list(np.flatnonzero(inside))
    assert list(store.sentence_positions(scope)) == list(np.flatnonzero(inside[store.sent_chunk]))

    every = store.gen.chunk_vecs @ q
    # Ties (the synthetic copies repeat passages word for word) go to the newest report.
    want = sorted(np.flatnonzero(inside), key=lambda p: (-every[p], -store.recency[p]))[:12]
    got = store.dense_search(q, 12, scope)
    assert [p for p, _ in got] == want
    assert np.allclose([s for _, s in got], every[want], atol=1e-6)

    sims = store.gen.sent_vecs @ q
    best = np.array([sims[store.sent_rows[c.id]].max() if store.sent_rows[c.id] else -np.inf for c in store.chunks])
    want = sorted(np.flatnonzero(inside & np.isfinite(best)), key=lambda p: (-best[p], -store.recency[p]))[:12]
    got = store.sentence_search(q, 12, scope)
    assert [p for p, _ in got] == want
    assert np.allclose([s for _, s in got], best[want], atol=1e-6)


def test_warm_loads_the_vector_and_keyword_indexes_before_the_first_question(tmp_path, built_index, settings, embeddings, monkeypatch, caplog):
    """What a first search over every report would load (Chroma's index, bm25s's) is loaded by
    ``warm``; the chat app's warm-up calls it, and a missing index leaves it a log line."""
    import logging

    import index.store as S
    from rag.api import query
    from ui.handlers import Engine

    index_dir = _copy(built_index, tmp_path)
    store = S.open_store(index_dir, settings)
    assert (store._collection, store._bm25) == (None, None)
    Engine(settings, index_dir=index_dir, embeddings=embeddings).warm_up()
    assert store._collection is not None and store._bm25 is not None
    monkeypatch.setattr(S, "chroma_client", lambda *a, **k: pytest.fail("Chroma opened again after the warm-up"))
    assert query(WHOLE_CORPUS_QUESTION, index_dir=index_dir, embeddings=embeddings).citations
    with caplog.at_level(logging.INFO, logger="ui.handlers"):
        Engine(settings, index_dir=tmp_path / "none", embeddings=embeddings).warm_up()
    assert [r.levelname for r in caplog.records if "not warmed up" in r.getMessage()] == ["INFO"]


def test_a_search_of_every_report_asks_chroma_and_agrees_with_the_exact_ranking(store):
    """Over the whole corpus, dense search is Chroma's (HNSW), on the same vectors: its first
    passages are the exact ranking's."""
    from index.embeddings import get_embeddings

    q = np.asarray(get_embeddings(store.settings).embed_query("supervision of social workers"), dtype="float32")
    every = store.gen.chunk_vecs @ q
    got = store.dense_search(q, 5, None)
    assert [p for p, _ in got] == list(np.argsort(-every)[:5])
    assert np.allclose([s for _, s in got], every[[p for p, _ in got]], atol=2e-3)


def test_segments_keep_half_precision_vectors_and_older_float32_ones_read_the_same(tmp_path, built_index, settings):
    from index.store import forget_chroma_client, open_store, segments_dir

    index_dir = _copy(built_index, tmp_path)
    seg = segments_dir(index_dir) / _live(index_dir)["reports"][CARDIFF]["segment"]
    assert {np.load(seg / f).dtype for f in ("chunk_vecs.npy", "sent_vecs.npy")} == {np.dtype("float16")}
    before = open_store(index_dir, settings)
    chunks, sents = before.gen.chunk_vecs[:], before.gen.sent_vecs[:]
    for f in ("chunk_vecs.npy", "sent_vecs.npy"):  # as an older Arolwg wrote them
        np.save(seg / f, np.load(seg / f).astype("float32"))
    import index.store as store_module

    store_module._STORES.clear()
    forget_chroma_client(index_dir, settings)
    after = open_store(index_dir, settings)
    assert after is not before
    assert np.array_equal(after.gen.chunk_vecs[:], chunks) and np.array_equal(after.gen.sent_vecs[:], sents)


def test_a_write_reads_each_kept_segment_once_without_its_vectors(tmp_path, dated_index, settings, embeddings, monkeypatch):
    """Removing a report checks and reuses every other report's segment in one read, its vectors
    only mapped (their sizes checked), not read: a write's reading grows with the corpus only by
    small files."""
    import index.build as build_module
    import index.store as store_module
    from index import list_reports, update_index

    index_dir = tmp_path / "index"
    shutil.copytree(dated_index, index_dir)
    reads: list[tuple[str, object]] = []
    real = store_module.read_segment

    def counting(index_dir, key, **kw):
        reads.append((key, kw.get("vectors", True)))
        return real(index_dir, key, **kw)

    before = {r.report_id for r in list_reports(index_dir, settings)}
    monkeypatch.setattr(store_module, "read_segment", counting)
    monkeypatch.setattr(build_module, "read_segment", counting)
    gone = sorted(before)[0]
    update_index(index_dir, remove=[gone], settings=settings, embeddings=embeddings)
    kept = _live(index_dir)["reports"]
    assert set(kept) == before - {gone}
    assert sorted(reads, key=str) == sorted(((r["segment"], "mapped") for r in kept.values()), key=str), reads
