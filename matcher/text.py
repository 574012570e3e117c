"""Text handling: HTML to clean text, normalising words, and the lexicons that link how people
describe interests and needs to how activities are written."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

_BLOCK_TAGS = {
    "p", "br", "div", "li", "ul", "ol", "tr", "td", "th", "table", "h1", "h2", "h3", "h4",
    "h5", "h6", "section", "article", "blockquote", "hr",
}  # fmt: skip
_SKIP_TAGS = {"script", "style", "head", "title", "noscript", "template"}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:  # in HTML a line break in the source is only a space
            self.parts.append(data.replace("\r", " ").replace("\n", " "))


# Runs of blanks become one space: only runs that are not one space already need replacing.
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u200b]{2,}|[\t\r\f\v\u00a0\u200b]")
_NEWLINES = re.compile(r"\s*\n\s*")


def clean_html(text: str | None) -> str:
    """Plain text from an HTML fragment: tags and scripts gone, entities decoded, blank runs
    folded, paragraph breaks kept as single newlines. Plain text passes through unchanged."""
    if not text:
        return ""
    if "<" in text and ">" in text:
        parser = _TextExtractor()
        parser.feed(text)
        parser.close()
        text = "".join(parser.parts)
    else:
        text = html.unescape(text)
    text = _SPACES.sub(" ", text)
    if "\n" in text:
        text = _NEWLINES.sub("\n", text)
    return text.strip()


# --- words ----------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]*[a-z][a-z0-9]*")  # bare numbers (times, prices) say nothing of topic
_STOP = frozenset(
    "a an and are as at be by for from has have i in is it its of on or our the their there "
    "this to was we were will with you your who which what when where can all any also into "
    "out up us so if not no but do does more most very just about some such than them they "
    "he she his her him my me am been being would could should may might must".split()
)


def stem(word: str) -> str:
    """A deliberately light stemmer: plural, then -ing, so 'walks', 'walking' and 'walk' meet
    (and 'mornings' meets 'morning')."""
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 5 and word.endswith(("sses", "zzes")):
        word = word[:-2]  # classes -> class, quizzes -> quizz
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if len(word) > 5 and word.endswith("ing"):
        word = word[:-3]
        if len(word) > 2 and word[-1] == word[-2] and word[-1] not in "aeiouls":
            word = word[:-1]  # swimming -> swim, knitting -> knit
    return word


def words(text: str, cache: dict[str, str] | None = None) -> list[str]:
    """Lower-cased, stemmed words with stop words removed.

    ``cache`` (a dict the caller owns) saves re-stemming the same words when a whole catalogue
    is tokenised at load; the result is the same with or without it.
    """
    text = text.lower().replace("'", "").replace("\u2019", "")
    if cache is None:
        return [stem(w) for w in _WORD.findall(text) if w not in _STOP]
    found = _WORD.findall(text)
    stems = list(map(cache.get, found))
    if None in stems:
        for w in found:
            if w not in cache:
                cache[w] = "" if w in _STOP else stem(w)  # a stem is never empty
        stems = list(map(cache.__getitem__, found))
    return list(filter(None, stems))


# --- lexicons -------------------------------------------------------------------------------
# Interest concepts: how people say what they like, and how listings write it. A phrase may
# belong to more than one concept ("tai chi" is both tai chi and gentle exercise).

CONCEPTS: dict[str, tuple[str, ...]] = {
    "gardening": ("garden", "gardening", "gardener", "allotment", "grow veg", "growing",
                  "horticulture", "horticultural", "green fingers", "vegetables", "plants",
                  "planting", "plot", "flowers", "community garden", "polytunnel"),
    "singing": ("karaoke", "sing song", "sing", "singing", "choir", "choral", "vocal",
                "sing along", "singalong",
                "harmony", "songs", "singers"),
    "music": ("music", "musical", "ukulele", "guitar", "band", "instrument", "drumming",
              "drum", "orchestra", "songs", "piano"),
    "walking": ("walk", "walking", "walkers", "ramble", "rambling", "rambler", "hike", "hiking",
                "nordic walking", "stroll", "health walk"),
    "gentle exercise": ("keep mobile", "keeping mobile", "tai chi", "qigong", "chair exercise",
                        "seated exercise", "chair yoga",
                        "chair based", "gentle exercise", "gentle movement", "strength and balance",
                        "pilates", "stretching", "falls prevention", "low impact", "gentle yoga",
                        "mobility"),
    "exercise": ("weights", "work out", "working out", "fitter", "get fit", "exercise", "fitness",
                 "gym", "workout", "keep fit", "circuits", "aerobics",
                 "get moving", "physical activity"),
    "yoga": ("yoga",),
    "tai chi": ("tai chi", "qigong"),
    "dancing": ("dance", "dancing", "tea dance", "zumba", "ballroom", "line dancing",
                "belly dancing"),
    "swimming": ("swim", "swimming", "aqua", "pool", "aquafit"),
    "cycling": ("cycle", "cycling", "bike", "biking", "bicycle"),
    "sport": ("darts", "snooker", "football", "netball", "cricket", "bowls", "badminton",
              "table tennis", "sport",
              "sports", "walking football", "tennis", "golf", "kickboxing", "taekwondo"),
    "running": ("run", "running", "parkrun", "jog", "jogging", "couch to 5k"),
    "art": ("arty", "doodle", "doodling", "art", "arts", "painting", "paint", "drawing",
            "sketching", "watercolour",
            "creative", "pottery", "artist"),
    "crafts": ("cross stitch", "embroidery", "craft", "crafts", "crafting", "knit", "knitting",
               "crochet", "sewing", "natter",
               "quilting", "needlework", "making"),
    "woodwork": ("woodwork", "shed", "mens shed", "diy", "tools", "repair", "carpentry",
                 "tinkering", "fixing"),
    "cooking": ("cook", "cooking", "baking", "bake", "recipe", "recipes", "kitchen"),
    "eating together": ("lunch", "lunch club", "meal", "meals", "dinner", "breakfast", "cafe",
                        "cuppa", "tea and cake", "coffee morning", "community cafe"),
    "reading": ("novel", "novels", "read", "reading", "book", "books", "book club", "library",
                "poetry", "writing",
                "storytelling", "creative writing"),
    "history": ("family tree", "genealogy", "history", "heritage", "museum", "local history"),
    "photography": ("photo", "photography", "camera", "photographs"),
    "nature": ("fresh air", "nature", "wildlife", "conservation", "outdoors", "outdoor",
               "green space",
               "park", "woodland", "birdwatching", "countryside"),
    "company": ("out of the house", "someone to talk to", "chat", "company", "companionship",
                "friends", "friendship", "meet people",
                "social", "sociable", "natter", "befriend", "befriending", "get together",
                "coffee morning", "talk", "talking"),
    "volunteering": ("volunteer", "volunteering", "give back", "help out", "helping others"),
    "computers": ("computer", "computers", "internet", "tablet", "smartphone", "email", "ipad",
                  "laptop", "digital", "get online", "it skills"),
    "games": ("quizzes", "crossword", "crosswords", "games", "bingo", "quiz", "cards", "chess",
              "dominoes", "board games", "puzzles" ),
    "faith": ("church", "faith", "mosque", "prayer", "spiritual", "temple", "gurdwara"),
    "drama": ("am dram", "drama", "theatre", "acting", "play", "plays", "amateur dramatics"),
    "learning": ("course", "courses", "class", "classes", "learn", "learning", "education",
                 "english", "esol", "maths", "qualification", "lessons"),
    "mindfulness": ("mindfulness", "meditation", "relaxation", "relax", "calm", "breathing"),
}  # fmt: skip

# Need codes: words that show an activity helps with a need, for activities that list none.
NEED_LEXICON: dict[str, tuple[str, ...]] = {
    "loneliness": ("lonely", "loneliness", "isolation", "isolated", "befriend", "befriending",
                   "befriender", "company", "companionship", "meet people", "friendship",
                   "friendly group", "coffee morning", "lunch club", "social", "get together",
                   "community cafe", "natter", "tea dance", "meet new people", "social group"),
    "mental_wellbeing": ("mental health", "wellbeing", "well being", "anxiety", "anxious",
                         "depression", "low mood", "stress", "mindfulness", "confidence",
                         "peer support", "self esteem", "emotional", "talking therapy",
                         "suicide", "talk suicide", "mental wellbeing"),
    "physical_activity": ("exercise", "walk", "walking", "fitness", "sport", "football",
                          "netball", "swim", "swimming", "cycling", "yoga", "tai chi", "dance",
                          "dancing", "gym", "pilates", "strength and balance", "keep fit",
                          "running", "parkrun", "bowls", "circuits", "physical activity",
                          "get active", "kickboxing", "taekwondo", "badminton", "zumba"),
    "long_term_condition": ("diabetes", "copd", "lung", "breathe easy", "chronic", "pain",
                            "dementia", "memory", "stroke", "arthritis", "parkinson", "cancer",
                            "heart", "long term condition", "long term health", "fibromyalgia",
                            "sight loss", "hearing loss", "multiple sclerosis", "asthma",
                            "chronically ill", "visually impaired", "sensory impaired",
                            "autism", "learning disabilities", "disabled people"),
    "weight": ("weight", "healthy eating", "nutrition", "diet", "slimming", "weight management",
               "healthy weight", "healthy lifestyle"),
    "money": ("debt", "benefit", "benefits", "money", "financial", "finance", "budgeting",
              "universal credit", "pension credit", "bills", "citizens advice", "grant",
              "welfare rights", "energy bills", "cost of living"),
    "housing": ("housing", "homeless", "homelessness", "tenancy", "landlord", "rent",
                "eviction", "accommodation", "home adaptation", "rough sleeping", "tenant"),
    "employment": ("job", "jobs", "employment", "employability", "cv", "interview", "career",
                   "careers", "volunteer", "volunteering", "work experience", "job club",
                   "apprenticeship", "back to work", "job search"),
    "learning": ("learn", "learning", "course", "courses", "education", "esol", "english class",
                 "maths", "qualification", "skills", "workshop", "college", "adult learning",
                 "lessons", "training"),
    "carers": ("carer", "carers", "caring for", "unpaid carer", "respite", "young carers",
               "carers cafe"),
    "bereavement": ("bereavement", "bereaved", "grief", "grieving", "loss of a loved one",
                    "widow", "widowed", "cruse", "death"),
    "substance_use": ("alcohol", "drug", "drugs", "addiction", "recovery", "sober", "sobriety",
                      "alcoholics anonymous", "smart recovery", "substance", "narcotics",
                      "drug and alcohol misuse", "gambling"),
    "food": ("food bank", "foodbank", "pantry", "free meal", "hot meal", "food parcel",
             "community fridge", "hunger", "surplus food", "free food", "food support"),
    "digital": ("digital", "computer", "internet", "tablet", "smartphone", "get online", "ipad",
                "email", "it skills", "digital skills", "laptop", "computers"),
}  # fmt: skip


class _Phrases(dict[tuple[str, ...], list[str]]):
    """Phrase (as words) -> labels, knowing which words can start a phrase: most tokens start
    none, and are passed over at once."""

    first: frozenset[str] = frozenset()  # the first words of its phrases
    first2: frozenset[str] = frozenset()  # ... of its two-word phrases
    first3: frozenset[str] = frozenset()  # ... of its three-word phrases
    order: dict[str, int] = {}  # label -> its place in the lexicon (set per index)


def _phrase_index(lexicon: dict[str, tuple[str, ...]]) -> _Phrases:
    index = _Phrases()
    for label, phrases in lexicon.items():
        for phrase in phrases:
            key = tuple(words(phrase))
            if key and label not in index.setdefault(key, []):
                index[key].append(label)
    index.first = frozenset(key[0] for key in index)
    index.first2 = frozenset(key[0] for key in index if len(key) == 2)
    index.first3 = frozenset(key[0] for key in index if len(key) == 3)
    index.order = {label: k for k, label in enumerate(lexicon)}
    return index


_CONCEPT_PHRASES = _phrase_index(CONCEPTS)
_NEED_PHRASES = _phrase_index(NEED_LEXICON)
# _find looks for phrases of one to three words.
assert all(len(key) <= 3 for key in (*_CONCEPT_PHRASES, *_NEED_PHRASES))


def _find(tokens: list[str], index: _Phrases) -> dict[str, set[str]]:
    """Labels whose phrases occur in ``tokens``, with the phrases that matched (labels in the
    lexicon's order)."""
    present = index.first.intersection(tokens)
    if not present:
        return {}
    keys = [(t,) for t in present if (t,) in index]
    if len(tokens) > 1 and not index.first2.isdisjoint(present):
        keys += index.keys() & set(zip(tokens, tokens[1:], strict=False))
    if len(tokens) > 2 and not index.first3.isdisjoint(present):
        keys += index.keys() & set(zip(tokens, tokens[1:], tokens[2:], strict=False))
    found: dict[str, set[str]] = {}
    for key in keys:
        for label in index[key]:
            found.setdefault(label, set()).add(" ".join(key))
    if len(found) < 2:
        return found
    return {label: found[label] for label in sorted(found, key=index.order.__getitem__)}


def concepts_in(text: str) -> set[str]:
    """Interest concepts mentioned in ``text`` ("allotment" -> gardening)."""
    return set(_find(words(text), _CONCEPT_PHRASES))


def need_hits(text: str) -> dict[str, int]:
    """How many distinct lexicon phrases of each need occur in ``text``."""
    return need_hits_in(words(text))


def need_hits_in(tokens: list[str]) -> dict[str, int]:
    """:func:`need_hits` of text already split by :func:`words`."""
    return {need: len(p) for need, p in _find(tokens, _NEED_PHRASES).items()}


def analyse(text: str) -> list[str]:
    """Tokens for TF-IDF: stemmed words plus one ``c:<concept>`` token per concept mention, so
    that "allotment" and "gardening" share a dimension."""
    return analyse_tokens(words(text))


def analyse_tokens(tokens: list[str]) -> list[str]:
    """:func:`analyse` of text already split by :func:`words`."""
    concepts = _find(tokens, _CONCEPT_PHRASES)
    return tokens + [f"c:{c}" for c in sorted(concepts) for _ in range(2)]
