import pytest
from hypothesis import given
from hypothesis import strategies as st

from allennlp_structkd.dataset_readers.tag_schemes import TagSchemeError, convert, spans_from_tags, tags_from_spans


def test_iob1_iob2_bioes_agree():
    iob1 = ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG"]
    spans = [(0, 1, "PER"), (2, 2, "PER"), (4, 4, "LOC"), (5, 5, "ORG")]
    assert spans_from_tags(iob1, "IOB1") == spans
    iob2 = tags_from_spans(spans, 6, "BIO")
    assert iob2 == ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG"]
    bioes = convert(iob2, "IOB2", "BIOES")
    assert bioes == ["B-PER", "E-PER", "S-PER", "O", "S-LOC", "S-ORG"]
    assert tags_from_spans(spans, 6, "IOB1") == iob1
    assert spans_from_tags(["U-X", "B-Y", "L-Y"], "BIOUL") == [(0, 0, "X"), (1, 2, "Y")]


@pytest.mark.parametrize(
    "tags, scheme, index",
    [
        (["O", "I-PER"], "IOB2", 1),
        (["B-PER", "I-LOC"], "IOB2", 1),
        (["O", "B-PER"], "IOB1", 1),
        (["B-PER", "O"], "BIOES", 1),
        (["I-PER"], "BIOES", 0),
        (["B-PER", "I-PER"], "BIOES", 1),
        (["O", "E-PER"], "BIOES", 1),
        (["S-PER"], "IOB2", 0),
        (["PER"], "IOB2", 0),
    ],
)
def test_invalid_sequences_name_the_bad_tag(tags, scheme, index):
    with pytest.raises(TagSchemeError) as error:
        spans_from_tags(tags, scheme)
    assert error.value.index == index


def test_unknown_scheme():
    with pytest.raises(ValueError, match="unknown tag scheme"):
        spans_from_tags(["O"], "BILOU2")


@st.composite
def span_sets(draw):
    n = draw(st.integers(0, 12))
    spans, i = [], 0
    while i < n:
        if draw(st.booleans()):
            j = draw(st.integers(i, n - 1))
            spans.append((i, j, draw(st.sampled_from(["A", "B"]))))
            i = j + 1
        else:
            i += 1
    return n, spans


@given(span_sets(), st.sampled_from(["IOB1", "IOB2", "BIOES"]))
def test_round_trip(data, scheme):
    n, spans = data
    assert spans_from_tags(tags_from_spans(spans, n, scheme), scheme) == spans
