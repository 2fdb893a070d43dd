#!/usr/bin/env python3
"""Writes tests/golden/tokenizer/: CLIP's real vocab and merges, four tokenizer folders'
config files, and the ids transformers' CLIPTokenizer gives for a few hundred prompts.

    /opt/ref-venv/bin/pip install transformers==5.24.0
    /opt/ref-venv/bin/pip install --no-deps open_clip_torch==3.3.0
    /opt/ref-venv/bin/python tests/golden/make_tokenizer_golden.py

open_clip_torch ships OpenAI's bpe_simple_vocab_16e6.txt.gz; vocab.json and merges.txt are
derived from it exactly as CLIP's tokenizer does (256 byte characters, the same with
"</w>", the first 48894 merges joined, <|startoftext|>, <|endoftext|>: 49408 entries); the
script checks known CLIP ids. Only that file is read, hence --no-deps (no torchvision, and
no ftfy: transformers 5's CLIPTokenizer does not use ftfy anyway).

Tokenizer folders (configs only; vocab.json.gz and merges.txt.gz are shared):
  sd15/       SD1.5's tokenizer/: legacy configs, pads with <|endoftext|> (49407)
  sdxl_2/     SDXL base's tokenizer_2/: legacy configs, pads with "!" (id 0)
  decoder_2/  a tokenizer_2 saved by newer transformers (added_tokens_decoder)
  added/      textual-inversion style added tokens (normalized, raw, lstrip, rstrip)

Prompts: hand-written ones (unicode, emoji, punctuation, numbers, apostrophes, whitespace,
special tokens), StoryDiffusion-style stories under 8 style templates, prompts past 77
tokens, seeded random strings, and every string of configs/*.yaml: rerun the script when
the configs change. golden_ids.txt.gz: see its header (zcat). Versions used are written there too.
"""
import gzip
import importlib.metadata as md
import json
import os
import random
import shutil
import sys
import tempfile

from transformers import CLIPTokenizer
from transformers.utils import logging as hf_logging

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "tokenizer")
MAX_LEN = 77


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def clip_vocab_and_merges():
    bpe = [f for f in md.files("open_clip_torch") if f.name == "bpe_simple_vocab_16e6.txt.gz"]
    assert bpe, "open_clip_torch does not ship bpe_simple_vocab_16e6.txt.gz"
    lines = gzip.open(bpe[0].locate()).read().decode("utf-8").split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 49408 and len(set(vocab)) == 49408
    return {v: i for i, v in enumerate(vocab)}, merges


def added(content, normalized, special=True, lstrip=False, rstrip=False):
    return {"content": content, "lstrip": lstrip, "normalized": normalized, "rstrip": rstrip,
            "single_word": False, "special": special}


def legacy(content):  # how SD1.5 / SDXL tokenizer_config.json write special tokens
    return {"__type": "AddedToken", "content": content, "lstrip": False, "normalized": True,
            "rstrip": False, "single_word": False}


def legacy_map(content):  # ... and special_tokens_map.json
    return {"content": content, "lstrip": False, "normalized": True, "rstrip": False,
            "single_word": False}


def configs():
    sot, eot = "<|startoftext|>", "<|endoftext|>"
    base = {"add_prefix_space": False, "do_lower_case": True, "errors": "replace",
            "model_max_length": MAX_LEN, "tokenizer_class": "CLIPTokenizer"}
    sd15 = dict(base, bos_token=legacy(sot), eos_token=legacy(eot), pad_token=eot,
                unk_token=legacy(eot), name_or_path="openai/clip-vit-large-patch14")
    sd15_map = {"bos_token": legacy_map(sot), "eos_token": legacy_map(eot), "pad_token": eot,
                "unk_token": legacy_map(eot)}
    sdxl = dict(base, bos_token=legacy(sot), eos_token=legacy(eot), pad_token="!",
                unk_token=legacy(eot), clean_up_tokenization_spaces=True)
    sdxl_map = {"bos_token": legacy_map(sot), "eos_token": legacy_map(eot), "pad_token": "!",
                "unk_token": legacy_map(eot)}
    dec2 = dict(base, bos_token=sot, eos_token=eot, pad_token="!", unk_token=eot,
                added_tokens_decoder={"0": added("!", False), "49406": added(sot, True),
                                      "49407": added(eot, False)})
    ti = dict(base, bos_token=sot, eos_token=eot, pad_token=eot, unk_token=eot,
              added_tokens_decoder={"49406": added(sot, True), "49407": added(eot, True),
                                    "49408": added("<Cat-Toy>", True, special=False),
                                    "49409": added("<Raw>", False, special=False),
                                    "49410": added("<ls>", True, special=False, lstrip=True),
                                    "49411": added("<rs>", False, special=False, rstrip=True)})
    return {"sd15": {"tokenizer_config.json": sd15, "special_tokens_map.json": sd15_map},
            "sdxl_2": {"tokenizer_config.json": sdxl, "special_tokens_map.json": sdxl_map},
            "decoder_2": {"tokenizer_config.json": dec2},
            "added": {"tokenizer_config.json": ti}}


# ---- prompts -------------------------------------------------------------------------

CHARACTERS = {
    "Bob": "a man, wearing a black suit",
    "Alice": "a woman, red hair, green dress",
    "Lily": "a little girl, yellow raincoat, pigtails",
    "Tom": "an old sailor with a grey beard, blue cap",
    "Mochi": "a fluffy white cat with orange eyes",
}
FRAMES = [
    "[Bob] at home, read new paper #at home, The newspaper says there is a treasure house in the forest.",
    "[Bob] on the road, near the forest",
    "[Alice] is make a call at home # [Alice] invites [Bob] to join her.",
    "[NC]A tiger appeared in the forest, at night ",
    "[NC] The car on the road, near the forest #They drives to the forest in search of treasure.",
    "[Bob] very frightened, open mouth, in the forest, at night",
    "[Alice] very frightened, open mouth, in the forest, at night",
    "[Bob] and [Alice] running very fast, in the forest, at night",
    "[NC] A house in the forest, at night #Suddenly, They discovers the treasure house!",
    "[Bob] and [Alice] in the house filled with treasure, laughing, at night #He is overjoyed inside the house.",
    "[Lily] jumping in puddles, rainy street #Lily loves the rain",
    "[Tom] steering the ship through a storm, huge waves",
    "[Mochi] sleeping on a windowsill, morning sunlight",
    "[Lily] and [Mochi] reading a book under a tree # The end.",
    "[Tom] telling a story to [Lily], campfire, stars",
    "[NC] empty beach at sunset, seagulls",
]
STYLES = {
    "japanese anime": "japanese anime style, {prompt}, anime artwork, vibrant colors, detailed "
                      "linework, studio quality",
    "digital oil painting": "{prompt}, digital oil painting, thick brush strokes, rich texture, "
                            "warm lighting, masterpiece",
    "pixar character": "a 3d animated character in the style of a family movie, {prompt}, "
                       "big expressive eyes, soft lighting, octane render",
    "photographic": "cinematic photo of {prompt}. 35mm photograph, film grain, bokeh, "
                    "professional, 4k, highly detailed",
    "comic book": "comic book panel, {prompt}, bold ink outlines, halftone shading, vivid "
                  "colors",
    "line art": "line art drawing of {prompt}, clean lines, monochrome, minimalist, sketch",
    "film noir": "black and white film noir still, {prompt}, high contrast, dramatic "
                 "shadows, 1940s",
    "isometric": "isometric room, {prompt}, tiny diorama, pastel colors, 3d render, "
                 "cute, low poly",
}
NEGATIVES = [
    "bad anatomy, bad hands, missing fingers, extra fingers, three hands, three legs, bad arms, "
    "missing legs, missing arms, poorly drawn face, bad face, fused face, cloned face, three "
    "crus, fused feet, fused thigh, extra crus, ugly fingers, horn, cartoon, cg, 3d, unreal, "
    "animate, amputation, disconnected limbs",
    "lowres, text, error, cropped, worst quality, low quality, jpeg artifacts, ugly, "
    "duplicate, morbid, mutilated, out of frame, blurry, watermark, signature",
    "naked, deformed, bad anatomy, disfigured, poorly drawn face, mutation, mutated, extra "
    "limb, ugly, disgusting, poorly drawn hands, missing limb, floating limbs",
]

HANDWRITTEN = [
    "", " ", "\n", "   \t  ", "a", "A", "!", "!!", "!!!", "?", ".", "a photo of a cat",
    "A photo of an astronaut riding a horse on mars",
    "a photograph of an astronaut riding a horse",
    "masterpiece, best quality, ultra-detailed, 8k, hdr, (photorealistic:1.4), RAW photo",
    "((masterpiece)), [[blurry]], {{sharp}}, (cat:1.3), (dog:0.7)",
    "portrait of a woman, f/1.8, 85mm, ISO 100, 1/200s, golden hour --ar 16:9 --v 5",
    "1girl, solo, long hair, looking at viewer, smile, blue eyes, school uniform",
    "sd_xl_base_1.0.safetensors v1-5-pruned-emaonly.ckpt model.fp16.bin",
    "https://example.com/path/to/image.png?width=1024&height=768#anchor",
    "contact: someone@example.org, phone +1 (555) 123-4567",
    "#hashtag #StoryDiffusion @user_name $100 50% a&b a*b a^2 x=y+z",
    "it's a dog's life, isn't it? they're here, we've won, I'm fine, you'll see, he'd go",
    "IT'S A DOG'S LIFE, ISN'T IT? THEY'RE HERE, WE'VE WON, I'M FINE, YOU'LL SEE, HE'D GO",
    "It'S mIxEd CaSe, dOn'T yOu'Ll We'Ve",
    "rock 'n' roll, 'tis the season, O'Neil's pub, ''s, '''t, 's, 't, 're, 've, 'm, 'll, 'd",
    "it\u2019s a curly apostrophe, don\u2019t \u2018quote\u2019 \u201cdouble\u201d",
    "'", "''", "'s", "'sa", "a's'b", "'x 'y 'z", "l'amour, c'est la vie, aujourd'hui",
    "café, naïve, façade, jalapeño, Zürich, São Paulo, Ångström, crème brûlée, piñata",
    "cafe\u0301 nai\u0308ve A\u030angstro\u0308m (decomposed accents)",
    "e\u0301\u0301 a\u0323\u0302 o\u0302\u0323 x\u0301 \u0301alone",
    "Ελληνικά: ΟΔΥΣΣΕΥΣ ΣΟΦΟΣ, σοφός, Σίσυφος",
    "Русский текст: ПРИВЕТ, мир! Ёлка и ёж.",
    "עברית: שלום עולם", "العربية: مرحبا بالعالم ١٢٣٤", "हिन्दी: नमस्ते दुनिया १२३",
    "ไทย: สวัสดีชาวโลก", "한국어: 안녕하세요 세계", "\u1100\u1161\u11a8 (jamo compose to 각)",
    "日本語: こんにちは世界、カタカナ、ﾊﾝｶｸｶﾀｶﾅ", "中文：你好，世界！一个女孩在公园里散步。",
    "東京タワー 中文 漢字かな交じり文", "繁體中文：龍鳳呈祥，畫中有詩",
    "ＦＵＬＬＷＩＤＴＨ ｌｅｔｔｅｒｓ ａｎｄ ｄｉｇｉｔｓ １２３４５",
    "ligatures: ﬁ ﬂ ﬀ ﬃ, roman numerals: Ⅻ ⅻ Ⅳ, superscripts x² y³ ₁₂",
    "fractions ½ ¼ ¾ ⅓, circled ① ② ⑳, stacked ㉑ ㊿",
    "İstanbul, ISTANBUL, ıi, Straße, STRASSE, ǅungla ǈj ǋ, ẞ",
    "ΣΑΣ Σ σς ς",
    "emoji: 🐱 🐶 🦄 🌈 🔥 💯 ✨ ❤️ ❤ 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇯🇵 🇺🇸 1️⃣ #️⃣",
    "a cute 🐱 cat wearing a 🎩 hat, 🌸 cherry blossoms 🌸",
    "😀😃😄😁😆😅😂🤣 many emoji in a row 🙂🙃",
    "math: ∑ ∫ √ ∞ ≠ ≤ ≥ ± × ÷ → ← ↔ ∀ ∃ ∈ ∅",
    "currency: € £ ¥ ₹ ₽ ¢ $ ₿",
    "punctuation runs: !!! ??? ?!?! ... …… --- ––– —— *** ((( ))) <<>> [[ ]] {{ }}",
    "@#$%^&*()_+-=[]{}|;':\",./<>?`~\\",
    "~~~ ``` ||| \\\\ /// ;;; ::: ,,, ... ___ --- +++ === ###",
    "a!b?c.d,e;f:g-h_i(j)k[l]m{n}o<p>q/r\\s|t`u~v@w#x$y%z^",
    "numbers: 0 1 12 123 1234567890 3.14159 1,000,000 -42 +7 1e10 0x1F 2024-01-01 12:30:45",
    "v1.5 sdxl-1.0 gpt-4 4k 8k 1080p 16:9 3:2 100% 50/50 24/7",
    "١٢٣ ٤٥٦ (arabic-indic) ०१२३ (devanagari) ๑๒๓ (thai) ０１２ (fullwidth)",
    "11111111111111111111111111111111111111111111",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "abcdefghijklmnopqrstuvwxyz" * 12,
    "supercalifragilisticexpialidocious pneumonoultramicroscopicsilicovolcanoconiosis",
    "multiple     spaces   between    words", "tabs\tbetween\t\twords", "new\nlines\n\nhere",
    "windows\r\nline\r\nends", "  leading and trailing spaces  ", "\t\n mixed \r\n whitespace \t",
    "ideographic\u3000space and\u00a0nbsp and\u2003em space and\u2009thin",
    "next\u0085line, line\u2028separator, para\u2029separator, ogham\u1680space",
    "vertical\x0btab, form\x0cfeed, zero\u200bwidth space, word\u2060joiner, soft\u00adhyphen",
    "control \x01\x02\x1b[0m \x7f chars, file\x1cgroup\x1drecord\x1eunit\x1fsep",
    "bom \ufeff inside, replacement \ufffd char, private \ue000 use",
    "<|startoftext|>", "<|endoftext|>", "<|startoftext|>a photo of a cat<|endoftext|>",
    "a <|endoftext|> b", "a<|endoftext|>b", "<|endoftext|><|endoftext|><|endoftext|>",
    "A <|ENDOFTEXT|> b <|StartOfText|>", "<|endoftext", "endoftext|>", "<| endoftext |>",
    "<|startoftext|><|startoftext|>x", "!<|endoftext|>!", "x<<|endoftext|>>y",
    "hello!!! world!!", "wow! amazing! incredible!!", "!a!b!c!", "!!!!!!!!!!!!!!!!!!!!!!!!!",
    "what?! no!!! yes!?", "¡hola! ¿qué tal?",
    "<cat-toy> on a beach", "a photo of <Cat-Toy> and <CAT-TOY>", "a<cat-toy>b<cat-toy>",
    "<Raw> <raw> <RAW>", "x <ls> y  <ls>z", "x<rs>   y <rs>", "<ls><rs><Raw><cat-toy>",
    "A PHOTO OF A CAT", "CamelCaseWordsAreHere", "iPhone, McDonald's, eBay, YouTube, LaTeX",
    "The QUICK brown FOX jumps OVER the lazy DOG",
    "a painting of a fox sitting in a field at sunrise in the style of Claude Monet",
    "a red cube on top of a blue sphere, studio lighting, 3d render",
    "a bowl of ramen, steam rising, chopsticks, food photography",
    "cyberpunk city at night, neon signs, rain, reflections, blade runner vibe",
    "watercolor landscape, mountains, lake, misty morning",
    "a knight in shining armor fighting a dragon, epic, fantasy art, trending on artstation",
    "(best quality), (ultra-detailed), illustration, 1boy, 1girl, holding hands, sunset",
    "score_9, score_8_up, score_7_up, source_anime, rating_safe",
    "an ((extremely)) (((detailed))) [background] BREAK foreground AND background",
    "prompt with trailing comma,", ",leading comma", ",,,,", ", , , ,",
    "a\u200db (zero width joiner) a\u200cb (non joiner)",
    "tab\tat end\t", "\u00e9\u00e8\u00ea\u00eb \u00c9\u00c8\u00ca\u00cb",
    "\u00c5 vs A\u030a vs \u212b (angstrom sign)", "\u2126 ohm sign, \u03a9 omega",
    "\u1e9b\u0323 long s with dots", "\u0344 \u0340 \u0341 \u0343 compat combining",
    "\uac00\u11a8 hangul syllable + jamo", "\u3131\u314f ㄱㅏ compatibility jamo",
]


def story_prompts():
    out = []
    for style_name, template in STYLES.items():
        for frame in FRAMES:
            prompt = frame.split("#")[0]
            for name, desc in CHARACTERS.items():
                prompt = prompt.replace(f"[{name}]", f"[{name}] {desc}" if name == "Bob" else desc)
            prompt = prompt.replace("[NC]", "").strip()
            out.append(template.format(prompt=prompt))
        out.append(template.format(prompt=FRAMES[0]))  # the raw line, tags and caption
    out += FRAMES
    out += [f"[{n}] {d}" for n, d in CHARACTERS.items()]
    out += NEGATIVES
    return out


def long_prompts():
    words = ("a highly detailed portrait of an elegant woman wearing a flowing silk gown "
             "standing in a sunlit garden full of roses and lilies with butterflies and a "
             "marble fountain in the background while soft golden light filters through the "
             "leaves of ancient oak trees").split()
    out = []
    for n in (60, 70, 72, 73, 74, 75, 76, 77, 80, 100, 150, 300):
        out.append(" ".join(words[i % len(words)] for i in range(n)))
    out.append(", ".join(NEGATIVES) * 3)
    out.append("cat " * 200)
    out.append("!" * 200)
    out.append("a" * 2000)
    return out


def random_prompts(rng, n):
    pools = [
        (0x20, 0x7E), (0xA0, 0xFF), (0x100, 0x17F), (0x180, 0x24F), (0x250, 0x2AF),
        (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF), (0x5D0, 0x5EA), (0x620, 0x64A),
        (0x660, 0x669), (0x900, 0x97F), (0xE01, 0xE3A), (0x1100, 0x11FF), (0x2000, 0x206F),
        (0x2070, 0x209F), (0x20A0, 0x20BF), (0x2100, 0x214F), (0x2150, 0x218F), (0x2190, 0x21FF),
        (0x2200, 0x22FF), (0x2460, 0x24FF), (0x2500, 0x257F), (0x3000, 0x303F), (0x3040, 0x309F),
        (0x30A0, 0x30FF), (0x3130, 0x318F), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xFB00, 0xFB06),
        (0xFF01, 0xFF5E), (0xFF61, 0xFF9F), (0x1F300, 0x1F5FF), (0x1F600, 0x1F64F),
        (0x1F900, 0x1F9FF), (0x9, 0xD),
    ]
    out = []
    for _ in range(n):
        k = rng.randint(1, 40)
        chars = []
        for _ in range(k):
            lo, hi = rng.choice(pools)
            chars.append(chr(rng.randint(lo, hi)))
            if rng.random() < 0.3:
                chars.append(rng.choice([" ", " ", "  ", ", ", "'s ", "!", "\t", "'"]))
        out.append("".join(chars))
    return out


def config_strings():
    """Every string in configs/*.yaml (prompts, characters, style templates) once it has
    letters: the prompts storyrun's own configs will feed the tokenizer."""
    import glob

    import yaml

    out = []

    def walk(v):
        if isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, str) and any(c.isalpha() for c in v) and v not in out:
            out.append(v)

    for path in sorted(glob.glob(os.path.join(HERE, "..", "..", "configs", "**", "*.yaml"), recursive=True)):
        with open(path, encoding="utf-8") as f:
            for doc in yaml.safe_load_all(f):
                walk(doc)
    return out


def main():
    hf_logging.set_verbosity_error()  # "sequence longer than 77" is what the long prompts test
    vocab, merges = clip_vocab_and_merges()
    versions = {p: md.version(p) for p in ("transformers", "tokenizers", "open_clip_torch")}
    versions["python"] = sys.version.split()[0]
    try:
        import ftfy  # noqa: F401

        versions["ftfy"] = md.version("ftfy") + " (not used by transformers 5's CLIPTokenizer)"
    except ImportError:
        versions["ftfy"] = "not installed"
    os.makedirs(OUT, exist_ok=True)
    vocab_text = json.dumps(vocab, ensure_ascii=False).encode("utf-8")
    merges_text = ("#version: 0.2\n" + "\n".join(merges) + "\n").encode("utf-8")
    for name, data in (("vocab.json.gz", vocab_text), ("merges.txt.gz", merges_text)):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(gzip.compress(data, compresslevel=9, mtime=0))

    rng = random.Random(1234)
    prompts = HANDWRITTEN + story_prompts() + long_prompts() + random_prompts(rng, 80)
    assert all("\0" not in p for p in prompts) and len(set(prompts)) == len(prompts), "dup prompt"
    prompts += [p for p in config_strings() if p not in prompts]
    # the special-token folders see the prompts where special and added tokens matter
    special = [p for p in prompts if "!" in p or "<" in p or "|" in p]

    tokenizers = {}
    tmp = tempfile.mkdtemp()
    try:
        for cfg, files in configs().items():
            d = os.path.join(OUT, cfg)
            os.makedirs(d, exist_ok=True)
            full = os.path.join(tmp, cfg)
            os.makedirs(full)
            for fname, obj in files.items():
                for where in (d, full):
                    with open(os.path.join(where, fname), "w") as f:
                        json.dump(obj, f, indent=2)
                        f.write("\n")
            with open(os.path.join(full, "vocab.json"), "wb") as f:
                f.write(vocab_text)
            with open(os.path.join(full, "merges.txt"), "wb") as f:
                f.write(merges_text)
            tok = CLIPTokenizer.from_pretrained(full)
            assert type(tok).__name__ == "CLIPTokenizer" and len(tok) >= 49408
            tokenizers[cfg] = tok
    finally:
        shutil.rmtree(tmp)

    # OpenAI CLIP's ids for a known prompt: the derived vocab is the real one
    assert tokenizers["sd15"]("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert tokenizers["sd15"].pad_token_id == 49407 and tokenizers["sdxl_2"].pad_token_id == 0

    lines = [
        "# tests/golden/tokenizer/golden_ids.txt.gz: written by tests/golden/make_tokenizer_golden.py",
        "# " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        "# C <config> <bos> <eos> <pad> <model_max_length>: a tokenizer folder (configs in <config>/)",
        "# P <hex of the prompt's UTF-8>: a prompt; each following line, for some of the configs:",
        "# I <config> <n_untruncated> <ids...>: tokenizer(prompt, padding='max_length', max_length=77,",
        "#   truncation=True).input_ids up to the attention mask's length (the rest is the pad id);",
        "#   n_untruncated = len(tokenizer(prompt).input_ids)",
    ]
    for cfg, tok in tokenizers.items():
        lines.append(f"C {cfg} {tok.bos_token_id} {tok.eos_token_id} {tok.pad_token_id} {tok.model_max_length}")
    counts = {cfg: 0 for cfg in tokenizers}
    for p in prompts:
        lines.append("P " + p.encode("utf-8").hex())
        for cfg, tok in tokenizers.items():
            if cfg in ("decoder_2", "added") and p not in special:
                continue
            enc = tok(p, padding="max_length", max_length=MAX_LEN, truncation=True)
            ids, mask = enc.input_ids, enc.attention_mask
            n = sum(mask)
            assert len(ids) == MAX_LEN and mask == [1] * n + [0] * (MAX_LEN - n)
            assert all(i == tok.pad_token_id for i in ids[n:])
            full = len(tok(p).input_ids)
            lines.append(f"I {cfg} {full} " + " ".join(map(str, ids[:n])))
            counts[cfg] += 1
    with open(os.path.join(OUT, "golden_ids.txt.gz"), "wb") as f:
        f.write(gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=9, mtime=0))
    print(f"{len(prompts)} prompts ({len(config_strings())} strings of configs/); encodings per config: {counts}; versions: {versions}")


if __name__ == "__main__":
    main()
