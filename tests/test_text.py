"""Tests for matcher.text: HTML to clean text, the light stemmer, interest concepts (synonyms)
and need phrases."""

from __future__ import annotations

import pytest

from matcher.contract import NEEDS
from matcher.text import CONCEPTS, NEED_LEXICON, analyse, clean_html, concepts_in, need_hits, stem
from matcher.text import words as text_words

# --- clean_html -----------------------------------------------------------------------------

COUNCIL_HTML = """
<div class="service-description">
  <h2>About&nbsp;us</h2>
  <p>Join our <span class="x"><strong>friendly</strong> <span style="color:red">walking</span></span
  > group &amp; enjoy tea&nbsp;&amp;&nbsp;cake afterwards.</p>
  <script type="text/javascript">var tracker = "<p>SECRET</p>"; track(1 < 2 && 3 > 2);</script>
  <style>p { color: red; } .hidden { display: none }</style>
  <ul>
    <li>Tuesdays &ndash; 10am</li>
    <li>Fridays, &pound;2 a session</li>
  </ul>
  <p>Caf&eacute; at the end &#8211; &#x27;all welcome&#x27;.<br/>Dogs allowed.</p>
  <!-- editor: remember to update this -->
</div>
"""


def test_clean_html_on_a_council_description():
    text = clean_html(COUNCIL_HTML)
    assert "<" not in text and ">" not in text
    assert "SECRET" not in text and "tracker" not in text  # script content dropped
    assert "color" not in text and "display" not in text  # style content dropped
    assert "remember to update" not in text  # comments dropped
    assert "Join our friendly walking group & enjoy tea & cake afterwards." in text
    assert "About us" in text  # &nbsp; becomes an ordinary space
    assert "Fridays, £2 a session" in text
    assert "Café at the end – 'all welcome'." in text


def test_clean_html_keeps_blocks_as_single_lines():
    text = clean_html(COUNCIL_HTML)
    lines = text.split("\n")
    assert "Tuesdays – 10am" in lines
    assert "Fridays, £2 a session" in lines
    assert "Dogs allowed." in lines  # <br/> breaks the line
    assert all(line == line.strip() and line for line in lines)  # no blank or padded lines
    assert "  " not in text


def test_a_newline_in_html_source_is_only_a_space():
    # In HTML a line break in the source inside a paragraph is whitespace, not a new line;
    # editors wrap long paragraphs, and a sentence must stay on one line.
    html = "<p>Join our <span>friendly walking</span>\n  group, all welcome.</p><p>Next</p>"
    assert clean_html(html) == "Join our friendly walking group, all welcome.\nNext"


def test_nested_inline_tags_do_not_split_words_or_lines():
    assert clean_html("<p>Chair<b>-</b><i>based</i> exercise</p>") == "Chair-based exercise"
    assert clean_html("<span><span><span>deep</span> text</span></span>") == "deep text"


def test_entities_in_plain_text_are_decoded():
    assert clean_html("Tea &amp; cake &pound;1") == "Tea & cake £1"
    assert clean_html("Fish &amp;amp; chips") == "Fish &amp; chips"  # decoded once only


def test_plain_text_passes_through():
    assert clean_html("Walking group, all welcome") == "Walking group, all welcome"
    assert clean_html("age < 18 and > 65 welcome") == "age < 18 and > 65 welcome"
    assert clean_html("  spaced \t out  \n\n\n next  ") == "spaced out\nnext"


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        ("a\tb", "a b"),
        ("a\u00a0b", "a b"),
        ("a \u200b b", "a b"),
        ("a  b", "a b"),
        ("a b", "a b"),
        ("a \r\n b", "a\nb"),
        ("<p>one\ttwo</p>  <p>\u00a0three</p>", "one two\nthree"),
    ],
)
def test_every_run_of_blanks_becomes_one_space(text, clean):
    assert clean_html(text) == clean


@pytest.mark.parametrize("empty", [None, "", "<p></p>", "<script>x()</script>", " &nbsp; "])
def test_clean_html_of_nothing_is_empty(empty):
    assert clean_html(empty) == ""


def test_unclosed_tags_do_not_lose_text():
    assert clean_html("<p>Open <b>bold never closed<p>next") == "Open bold never closed\nnext"


# --- stem and words -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("walks", "walk"),
        ("walking", "walk"),
        ("walk", "walk"),
        ("swimming", "swim"),
        ("knitting", "knit"),
        ("running", "run"),
        ("classes", "class"),
        ("activities", "activity"),
        ("gardens", "garden"),
        ("gardening", "garden"),
        ("singers", "singer"),
        ("class", "class"),
        ("bus", "bus"),
        ("arthritis", "arthritis"),
        ("sing", "sing"),
        ("bring", "bring"),  # too short to lose -ing
        ("yoga", "yoga"),
    ],
)
def test_stem(word, expected):
    assert stem(word) == expected


def test_stem_makes_forms_meet():
    for group in (("walk", "walks", "walking"), ("garden", "gardens", "gardening")):
        assert len({stem(w) for w in group}) == 1, group


def test_words_with_a_stem_cache_are_the_same_words():
    cache: dict[str, str] = {}
    for text in ("The Men's SHED, for all of us!", "Walking & Talking", "walks walks the", ""):
        assert text_words(text, cache) == text_words(text)
        assert text_words(text, cache) == text_words(text)  # and again, from the cache
    assert cache["walking"] == "walk" and cache["the"] == ""  # stop words are remembered too


def test_words_lowercase_drop_stop_words_and_apostrophes():
    assert text_words("The Men's SHED, for all of us!") == ["men", "shed"]
    assert text_words("Walking & Talking") == ["walk", "talk"]


# --- concepts_in: how people say it meets how listings write it ------------------------------


@pytest.mark.parametrize(
    ("said", "listed", "concept"),
    [
        ("likes the allotment", "Community gardening group", "gardening"),
        ("used to have an allotment", "Green fingers: grow veg together", "gardening"),
        ("used to sing in a choir", "Singing for the brain", "singing"),
        ("choir", "Sing-along afternoon", "singing"),
        ("tai chi", "Gentle exercise for older people", "gentle exercise"),
        ("Tai Chi", "Chair-based gentle exercise", "gentle exercise"),
        ("rambling", "Health walks in the park", "walking"),
        ("knitting", "Craft club", "crafts"),
    ],
)
def test_synonyms_meet(said, listed, concept):
    assert concept in concepts_in(said)
    assert concept in concepts_in(listed)
    assert concepts_in(said) & concepts_in(listed)


def test_concepts_are_not_found_where_absent():
    assert "gardening" not in concepts_in("used to sing in a choir")
    assert "singing" not in concepts_in("likes the allotment")
    assert concepts_in("") == set()
    assert concepts_in("the of and") == set()


def test_phrase_concepts_need_the_whole_phrase():
    assert "tai chi" in concepts_in("tai chi")
    assert "tai chi" not in concepts_in("chi")
    assert "gentle exercise" not in concepts_in("gentle people")


def test_every_concept_and_need_phrase_finds_itself():
    for concept, phrases in CONCEPTS.items():
        for phrase in phrases:
            assert concept in concepts_in(phrase), (concept, phrase)
    for need, phrases in NEED_LEXICON.items():
        assert need in NEEDS
        for phrase in phrases:
            assert need_hits(phrase).get(need, 0) >= 1, (need, phrase)


def test_phrases_are_found_anywhere_and_counted_once():
    # a phrase at the very start or end, overlapping phrases, and a repeat
    assert concepts_in("tai chi") >= {"tai chi", "gentle exercise"}
    assert "company" in concepts_in("coffee morning")
    assert need_hits("lunch club, coffee morning, lunch club")["loneliness"] == 2
    assert need_hits("someone to talk to about debt")["money"] == 1
    assert need_hits("drug and alcohol misuse") == {"substance_use": 3}


def test_need_hits_list_needs_in_the_lexicons_order():
    hits = need_hits("debt advice for carers who are lonely")
    assert list(hits) == [n for n in NEED_LEXICON if n in hits]


def test_analyse_folds_synonyms_into_a_shared_token():
    assert "c:gardening" in analyse("allotment")
    assert "c:gardening" in analyse("gardening club")
    assert not any(t.startswith("c:") for t in analyse("zzz qqq"))


# --- need_hits ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "need"),
    [
        ("Debt and benefits advice", "money"),
        ("help with Universal Credit forms", "money"),
        ("a lunch club for lonely people", "loneliness"),
        ("come and meet new people", "loneliness"),
        ("Walking football", "physical_activity"),
        ("peer support for mental health", "mental_wellbeing"),
        ("Food bank and community fridge", "food"),
        ("Support for unpaid carers", "carers"),
        ("Bereavement support after the loss of a loved one", "bereavement"),
        ("Help to get online with a tablet", "digital"),
        ("Tenancy support for people at risk of eviction", "housing"),
        ("Job club: CV and interview practice", "employment"),
        ("Breathe Easy group for people with COPD", "long_term_condition"),
        ("Alcohol recovery group", "substance_use"),
        ("Healthy eating and weight management", "weight"),
    ],
)
def test_need_hits_find_the_need(text, need):
    hits = need_hits(text)
    assert hits.get(need, 0) >= 1
    assert max(hits, key=hits.get) == need or hits[need] == max(hits.values())


def test_need_hits_count_distinct_phrases():
    assert need_hits("debt") == {"money": 1}
    assert need_hits("debt, debt and more debt") == {"money": 1}  # one phrase, counted once
    assert need_hits("debt and benefits advice")["money"] == 2


def test_need_phrases_need_the_whole_phrase():
    assert "food" not in need_hits("a food market and a bank holiday")
    assert "food" in need_hits("the local food bank")
    assert need_hits("") == {}
    assert need_hits("knitting pattern swap") == {}
