"""Query languages for NLLB-CLIP: BCP-47 tags (``de``, ``pt-BR``, ``zh-Hans``) to FLORES-200.

NLLB-CLIP reads a query's language from a FLORES-200 code glued before the text
(``deu_Latn`` + text), so every face takes the tag people know and this table turns it into
the code the model knows. A FLORES-200 code itself (``deu_Latn``) is accepted too.
"""

from __future__ import annotations

from imagefind.errors import QueryError

DEFAULT_FLORES = "eng_Latn"

# Language (lower-case BCP-47 primary subtag, or language-script) → FLORES-200.
BCP47_TO_FLORES: dict[str, str] = {
    "af": "afr_Latn", "am": "amh_Ethi", "ar": "arb_Arab", "az": "azj_Latn", "be": "bel_Cyrl",
    "bg": "bul_Cyrl", "bn": "ben_Beng", "bs": "bos_Latn", "ca": "cat_Latn", "cs": "ces_Latn",
    "cy": "cym_Latn", "da": "dan_Latn", "de": "deu_Latn", "el": "ell_Grek", "en": "eng_Latn",
    "eo": "epo_Latn", "es": "spa_Latn", "et": "est_Latn", "eu": "eus_Latn", "fa": "pes_Arab",
    "fi": "fin_Latn", "fil": "tgl_Latn", "fr": "fra_Latn", "ga": "gle_Latn", "gl": "glg_Latn",
    "gu": "guj_Gujr", "he": "heb_Hebr", "hi": "hin_Deva", "hr": "hrv_Latn", "hu": "hun_Latn",
    "hy": "hye_Armn", "id": "ind_Latn", "is": "isl_Latn", "it": "ita_Latn", "ja": "jpn_Jpan",
    "ka": "kat_Geor", "kk": "kaz_Cyrl", "km": "khm_Khmr", "kn": "kan_Knda", "ko": "kor_Hang",
    "lo": "lao_Laoo", "lt": "lit_Latn", "lv": "lvs_Latn", "mk": "mkd_Cyrl", "ml": "mal_Mlym",
    "mn": "khk_Cyrl", "mr": "mar_Deva", "ms": "zsm_Latn", "my": "mya_Mymr", "nb": "nob_Latn",
    "ne": "npi_Deva", "nl": "nld_Latn", "nn": "nno_Latn", "no": "nob_Latn", "pa": "pan_Guru",
    "pl": "pol_Latn", "pt": "por_Latn", "ro": "ron_Latn", "ru": "rus_Cyrl", "si": "sin_Sinh",
    "sk": "slk_Latn", "sl": "slv_Latn", "sq": "als_Latn", "sr": "srp_Cyrl",
    "sv": "swe_Latn", "sw": "swh_Latn", "ta": "tam_Taml", "te": "tel_Telu", "th": "tha_Thai",
    "tl": "tgl_Latn", "tr": "tur_Latn", "uk": "ukr_Cyrl", "ur": "urd_Arab", "uz": "uzn_Latn",
    "vi": "vie_Latn", "zh": "zho_Hans", "zh-hans": "zho_Hans", "zh-hant": "zho_Hant",
    "zh-cn": "zho_Hans", "zh-sg": "zho_Hans", "zh-tw": "zho_Hant", "zh-hk": "zho_Hant",
    "zh-mo": "zho_Hant", "zu": "zul_Latn",
}  # fmt: skip
FLORES_CODES = frozenset(BCP47_TO_FLORES.values())
# What a language picker offers: each primary subtag once, Chinese by script (``zh`` alone
# would hide that Traditional is there too).
PICKER_TAGS: tuple[str, ...] = tuple(
    [*sorted(k for k in BCP47_TO_FLORES if "-" not in k and k != "zh"), "zh-Hans", "zh-Hant"]
)


def to_flores(lang: str | None, model: str = "the model") -> str:
    """The FLORES-200 code for a BCP-47 tag (``None`` or empty: English). The most specific
    known prefix wins (``zh-Hant-TW`` → ``zh-hant``; ``pt-BR`` → ``pt``)."""
    if lang is None or not lang.strip():
        return DEFAULT_FLORES
    tag = lang.strip()
    if tag in FLORES_CODES:
        return tag
    parts = tag.replace("_", "-").lower().split("-")
    for n in range(len(parts), 0, -1):
        code = BCP47_TO_FLORES.get("-".join(parts[:n]))
        if code:
            return code
    raise QueryError(
        f"{model}: language {lang!r} is not known: give a BCP-47 tag such as 'de', 'pt-BR' or "
        f"'zh-Hans' (or a FLORES-200 code such as 'deu_Latn'); known: "
        f"{', '.join(sorted(k for k in BCP47_TO_FLORES if '-' not in k))}"
    )
