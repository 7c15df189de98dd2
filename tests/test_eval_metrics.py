"""The benchmark's scoring functions on small hand-made cases, checked against hand computation."""

from __future__ import annotations

import math

import pytest

from eval import metrics as M


def test_hits_needs_half_the_quote():
    quote = (100, 200)
    assert [M.hits(p, quote) for p in [(0, 150), (0, 149), (150, 400), (151, 400), (120, 180), (0, 99)]] == [
        True,
        False,
        True,
        False,
        True,
        False,
    ]


def test_hit_matrix_checks_source_and_every_occurrence():
    passages = [("a.txt", 0, 50), ("b.txt", 0, 50), ("a.txt", 300, 400)]
    evidence = [("a.txt", [(310, 330)]), ("b.txt", [(900, 950), (10, 30)])]
    assert M.hit_matrix(passages, evidence) == [[False, False], [False, True], [True, False]]


def test_recall_mrr_ndcg_on_three_rankings():
    # q1: first hit at rank 2; q2: hit at rank 1; q3: no hit in the top 3.
    q1 = [[False], [True], [False]]
    q2 = [[True], [False], [False]]
    q3 = [[False], [False], [False]]
    ms = [q1, q2, q3]
    assert [M.recall_at_k(ms, k) for k in (1, 2, 3)] == [1 / 3, 2 / 3, 2 / 3]
    assert M.mean_reciprocal_rank(ms) == pytest.approx((0.5 + 1 + 0) / 3)
    assert M.ndcg_at_k(q1) == pytest.approx(1 / math.log2(3))
    assert M.ndcg_at_k(q2) == 1.0
    assert M.ndcg_at_k(q3) == 0.0
    assert M.mean_ndcg(ms) == pytest.approx((1 / math.log2(3) + 1) / 3)


def test_ndcg_credits_each_evidence_item_once():
    # Two evidence items; ranks 1 and 2 both hit item 0 only, rank 3 hits item 1.
    m = [[True, False], [True, False], [False, True]]
    ideal = 1 + 1 / math.log2(3)
    assert M.ndcg_at_k(m) == pytest.approx((1 + 1 / math.log2(4)) / ideal)
    assert M.ndcg_at_k(m, k=2) == pytest.approx(1 / ideal)


def test_full_recall_needs_every_item():
    m = [[True, False], [False, False], [False, True]]
    assert (M.recall_at_k([m], 1), M.full_recall_at_k([m], 2), M.full_recall_at_k([m], 3)) == (1.0, 0.0, 1.0)


def test_empty_sets_are_nan_not_zero():
    assert math.isnan(M.recall_at_k([], 5)) and math.isnan(M.mean_reciprocal_rank([])) and math.isnan(M.mean_ndcg([]))


def test_facts_case_whitespace_markers_and_alternatives():
    answer = "The inspectors  reviewed 32 children's\ncase files [1] in OCTOBER 2020 [2]."
    assert M.facts_present(answer, [["32"], ["october 2020"], ["case files"]])
    assert M.facts_present(answer, [["thirty-two", "32"]])
    assert not M.facts_present(answer, [["32"], ["November"]])
    assert M.facts_present("the council\u2019s plan", [["council's plan"]])
    assert M.normalise("files [1] in") == "files in"


def test_numbers_do_not_match_inside_longer_numbers():
    assert [M.fact_in("During 2019 and COVID-19", n) for n in ("9", "19", "2019", "201")] == [False, True, True, False]
    assert [M.fact_in("9 staff files; 320 calls", n) for n in ("9", "32", "320", "staff file")] == [True, False, True, True]
    assert M.facts_present("reviewed 9 files [4]", [["4", "four"]]) is False  # a citation marker is not a fact


def test_abstention_scores_whole_dict():
    unanswerable = [True, True, True, False, False, False, False]
    abstained = [True, True, False, True, False, False, False]
    assert M.abstention_scores(unanswerable, abstained) == {
        "abstention_precision": 2 / 3,
        "abstention_recall": 2 / 3,
        "answered_rate_answerable": 3 / 4,
        "abstained_rate_unanswerable": 2 / 3,
    }


def test_citation_checks():
    text = "Cardiff Council has a new culture of raised expectation."
    assert M.citation_valid(text, 0, 15, "Cardiff Council")
    assert not M.citation_valid(text, 1, 16, "Cardiff Council")
    assert not M.citation_valid(text, 50, 80, "x")
    assert not M.citation_valid(text, 0, 0, "")
    gold = [("c.txt", [(100, 200)])]
    assert [M.citation_on_gold(c, gold) for c in [("c.txt", 150, 300), ("c.txt", 0, 100), ("w.txt", 150, 160)]] == [
        True,
        False,
        False,
    ]


def test_percentiles_match_numpy_linear():
    values = [0.3, 0.1, 0.2, 0.5, 0.4]
    assert (M.percentile(values, 50), M.percentile(values, 95), M.percentile([7.0], 95)) == (0.3, 0.48, 7.0)


def test_threshold_sweep_picks_the_middle_of_the_feasible_range():
    answerable = [0.6, 0.7, 0.8, 0.9, None]  # None: abstains whatever the threshold
    unanswerable = [0.1, 0.2, 0.65]
    s = M.threshold_sweep(answerable, unanswerable, 0.6, 0.6, answerable_correct=[True, False, True, True, False])
    by_t = {p["threshold"]: p for p in s["points"]}
    assert sorted(by_t) == [-0.9, 0.15, 0.4, 0.625, 0.675, 0.75, 0.85, 1.9]
    assert by_t[0.4] == {
        "threshold": 0.4,
        "answered_rate_answerable": 0.8,
        "abstained_rate_unanswerable": 2 / 3,
        "meets_targets": True,
        "fact_accuracy": 0.6,
    }
    # Margins over the targets: 0.4 -> min(0.2, 0.067); 0.625 and 0.675 -> min(0.0, ...) = 0.
    assert s["best"] == by_t[0.4]
    assert [p["meets_targets"] for p in s["points"]] == [False, False, True, True, True, False, False, False]


def test_threshold_sweep_when_targets_cannot_be_met():
    s = M.threshold_sweep([0.2, 0.3], [0.25, 0.35], 0.95, 0.9)
    assert not any(p["meets_targets"] for p in s["points"])
    assert s["best"]["threshold"] in {p["threshold"] for p in s["points"]}


def test_dated_lines_counts_lines_labelled_with_council_and_year():
    need = {1: ("Wrexham", "2016"), 2: ("Wrexham", "2020"), 3: ("Cardiff", "2017")}
    answer = "\n".join(
        [
            "2 reports of Wrexham answer this:",  # cites nothing: not counted
            "Wrexham, Oct 2020: no child at immediate risk [2]",  # labelled
            "Wrexham: four children at immediate risk [1]",  # no year: not labelled
            "Wrexham, Oct 2020: mixes two inspections [1] [2]",  # 2016 not named: not labelled
            "Cardiff, Dec 2017 › Strengths:",
            "- a strength [3]",  # labelled by its heading
            "Preferred language is not consistently recognised: in Cardiff [3]",  # a colon in the text is no label
            "Newport: a council with one report [4]",  # needs no date: not counted
        ]
    )
    assert M.dated_lines(answer, need) == (2, 5)
    assert M.dated_lines("", need) == (0, 0)
    # A heading labels list items only, not the prose lines after it.
    assert M.dated_lines("Wrexham, Jun 2016:\n- a [1]\nb [1]", need) == (1, 2)


def test_threshold_sweep_fact_accuracy_leaves_out_questions_without_facts():
    # The second and fourth questions have no facts to check (which / changed questions): the
    # fact accuracy at each threshold is over the other two only.
    s = M.threshold_sweep([0.6, 0.7, 0.8, 0.9], [0.1], 0.5, 0.5, answerable_correct=[True, None, False, None])
    assert [(p["threshold"], p.get("fact_accuracy")) for p in s["points"]] == [
        (-0.9, 0.5), (0.35, 0.5), (0.65, 0.0), (0.75, 0.0), (0.85, 0.0), (1.9, 0.0)
    ]
    assert "fact_accuracy" not in M.threshold_sweep([0.6], [0.1], answerable_correct=[None])["points"][0]
