"""The offline demo MLLM: a tiny random-weight LLaVA (or Qwen2-VL) built locally, run by the
transformers backend.

Nothing is downloaded. :func:`ensure_demo_model` builds, once per (architecture, seed), a folder
in the ``save_pretrained`` layout holding

* a word-level tokenizer (``tokenizers`` WordPiece model over a fixed built-in English word list,
  plus letters and ``##``-letters so any unknown word -- an ImageNet class name -- still gets
  its own token sequence; lower-cased);
* ``architecture="llava"`` (default): a ``LlavaProcessor`` (28 x 28 images, 14-pixel patches:
  4 image tokens) with a LLaVA-1.5-style chat template ``USER: <image>\\n{prompt} ASSISTANT:``
  and a ``LlavaForConditionalGeneration`` with a 2-layer CLIP vision tower (hidden 32) and a
  2-layer Llama (hidden 64);
* ``architecture="qwen2vl"``: a ``Qwen2VLProcessor`` (images resized to 56..112 pixels a side:
  4 to 16 image tokens) with a Qwen-style ``<|im_start|>`` chat template and a
  ``Qwen2VLForConditionalGeneration`` (1 vision block, 2 text layers, hidden 64, multimodal
  rotary positions) -- the model family of the authors' released scripts;
* weights initialised from ``torch.manual_seed(seed)`` (about 0.2 M parameters).

The backend is then exactly :class:`ants.mllm.hf.TransformersBackend` pointed at that folder
(loaded in ``dtype``: fp32, the default, fp16 or bf16), so the demo exercises the real code path (chat template, processor, left-padded batched greedy
generation, decoding). Its answers are meaningless but real greedy generations, deterministic
for a seed. To make them parse, decoding is **constrained** by :class:`DemoGrammar` (a
``LogitsProcessor``; the model still picks every token greedily among the allowed ones):

* ENS: 3 to 7 distinct answer words, then end of sequence ("red stone river boat");
* VSNL: exactly ``1. w1\\n2. w2\\n3. w3\\n4. w4\\n5. w5`` with distinct answer words.

The folder lives under ``$ANTS_CACHE_DIR`` (default ``~/.cache/ants``) in
``demo-mllm/v{DEMO_VERSION}-{architecture}-seed{seed}``, or wherever ``model_dir`` says. It is
built in a temporary folder and renamed into place under a file lock, so concurrent jobs build
it once.
Its model id (``ants-demo-{architecture}-tiny``) and revision (builder version, seed, SHA-256
of the weights file) enter every cache key. Use the matching prompt family
(``family: llava`` or ``family: qwen2vl``) in the ``mllm`` config.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import string
import tempfile
from collections.abc import Mapping
from pathlib import Path

from ants.mllm.base import BackendError
from ants.mllm.hf import DTYPES, TransformersBackend

DEMO_VERSION = 1
ARCHITECTURES = ("llava", "qwen2vl")
MARKER = "ants_demo.json"

ENS_MIN_WORDS = 3
ENS_MAX_WORDS = 7
VSNL_ITEMS = 5

SPECIAL_TOKENS = (
    "<pad>", "<s>", "</s>", "<unk>", "<image>",
    "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|video_pad|>",
)  # fmt: skip
PUNCTUATION = (".", ",", ":", ";", "?", "!", "-", "'", '"', "(", ")", "/", "&")
DIGITS = tuple("0123456789")
# words of the ANTS prompts and the chat template (in the vocabulary, never generated)
PROMPT_WORDS = tuple(
    """a an and answer assistant class different describe do each eight excluding features fewer
    five give image in include line name names not numbered of on photo put separate share
    similar suggest than that the this to user visual with words""".split()
)
# what the demo model may say: concrete English nouns and common adjectives
ANSWER_WORDS = tuple(
    """apple arch asphalt autumn badge bag ball balloon bamboo banner barn barrel basket beach beam
    bean bear bed bee bell belt bench berry bicycle bird blanket blossom boat bone book boot
    bottle boulder bowl box branch bread brick bridge bronze brush bucket building bush butterfly
    cabin cable cactus cake camel candle canoe canyon cap car carpet cart castle cat cave chain
    chair chalk cheese cherry chimney church circle city cliff clock cloud coat coin column coral
    corn cottage crab crane crowd crystal cup curtain cushion dam deer desert desk dish dog doll
    door dragonfly drum duck dune eagle egg engine fabric fan feather fence fern field fire fish
    flag flame flower foam fog forest fork fountain fox frame frog fruit garden gate glacier glass
    glove goat grain grass gravel guitar hammer harbor hat hay hill horse house ice island ivy
    jacket jar jug kettle key kite ladder lake lamp lantern leaf lemon lighthouse lily lion log
    machine map market marsh meadow mirror moss moth mountain mud mug mushroom nest net oak ocean
    orange owl paint palm pan paper parrot path pebble pencil pepper piano pier pillow pine pipe
    plank plate pond pot puddle pumpkin quilt rabbit rail rain reed ribbon river road rock roof
    rope rose rug sail salt sand scarf sculpture shadow shell shelf ship shore shovel sign silk
    sky slope smoke snail snow soil spider spoon stair statue steam stone storm straw stream
    street sun swan table teapot tent tile tower toy track tractor train tree truck tunnel
    umbrella valley vase vine violin wagon wall wave web whale wheat wheel willow window wire wolf
    wood wool yarn
    ancient blue bright broken brown calm cold colorful crisp curved dark dry dusty empty faded
    flat fluffy foggy frozen fuzzy giant golden green grey hollow icy large long misty narrow
    old orange pale pink purple quiet red rocky rough round rusty shiny small smooth soft sparkling
    striped sunny tall tiny warm wet white wild wooden woven yellow young""".split()
)


def _vocabulary() -> list[str]:
    letters = list(string.ascii_lowercase)
    pieces = ["##" + c for c in letters + list(DIGITS)]
    tokens = list(SPECIAL_TOKENS) + ["\n"] + list(PUNCTUATION) + list(DIGITS) + letters + pieces
    return list(
        dict.fromkeys(tokens + list(PROMPT_WORDS) + list(ANSWER_WORDS))
    )  # 'a' is a letter and a word


LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}USER: "
    "{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<image>\n{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %} "
    "{% else %}ASSISTANT: {% for item in message['content'] %}{{ item['text'] }}{% endfor %}</s>{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<|vision_start|><image><|vision_end|>"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def demo_model_id(architecture: str = "llava") -> str:
    _check_architecture(architecture)
    return f"ants-demo-{architecture}-tiny"


def _check_architecture(architecture: str) -> None:
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"mllm.architecture: unknown demo architecture {architecture!r}; "
            f"valid architectures: {', '.join(ARCHITECTURES)}"
        )


def default_cache_root() -> Path:
    """``$ANTS_CACHE_DIR`` or ``~/.cache/ants``."""
    return Path(os.environ.get("ANTS_CACHE_DIR") or Path.home() / ".cache" / "ants")


def demo_model_dir(
    seed: int = 0, root: str | os.PathLike | None = None, architecture: str = "llava"
) -> Path:
    _check_architecture(architecture)
    name = f"v{DEMO_VERSION}-{architecture}-seed{int(seed)}"
    return Path(root or default_cache_root()) / "demo-mllm" / name


def _build_tokenizer():
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(_vocabulary())}
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="<unk>", max_input_chars_per_word=200))
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFKD(), normalizers.StripAccents(), normalizers.Lowercase()]
    )
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    tok.add_tokens([AddedToken("\n", normalized=False, special=False)])
    if tok.get_vocab_size() != len(vocab) or max(tok.get_vocab().values()) != len(vocab) - 1:
        raise RuntimeError("demo tokenizer: added tokens did not reuse their vocabulary ids")
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        extra_special_tokens={"image_token": "<image>"},
    )


def llava_processor(tokenizer, image_size: int):
    """A LLaVA-1.5 processor over ``tokenizer``: the shorter side resized to ``image_size``, a
    centre crop of ``image_size`` x ``image_size`` (CLIP mean/std), 14-pixel patches, the
    LLaVA chat template (the demo: 28; LLaVA-1.5-7B: 336, i.e. 576 image tokens)."""
    from transformers import LlavaProcessor
    from transformers.models.llava.image_processing_llava import LlavaImageProcessor

    image_processor = LlavaImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=14,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=LLAVA_CHAT_TEMPLATE,
    )


def _llava(tokenizer):
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
    )

    processor = llava_processor(tokenizer, 28)
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=28,
        patch_size=14,
        projection_dim=32,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        initializer_range=0.1,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        image_seq_length=4,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    )
    return processor, LlavaForConditionalGeneration, config


def _qwen2vl(tokenizer):
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLProcessor
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=112 * 112),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=QWEN_CHAT_TEMPLATE,
    )
    ids = tokenizer.convert_tokens_to_ids
    config = Qwen2VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 512,
            "rope_parameters": {
                "rope_type": "default",
                "mrope_section": [2, 3, 3],
                "rope_theta": 10000.0,
            },
            "initializer_range": 0.1,
            "pad_token_id": 0,
            "bos_token_id": 1,
            "eos_token_id": 2,
        },
        vision_config={
            "depth": 1,
            "embed_dim": 32,
            "hidden_size": 64,
            "num_heads": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        image_token_id=ids("<image>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )
    return processor, Qwen2VLForConditionalGeneration, config


def build_demo_model(folder: str | os.PathLike, seed: int = 0, architecture: str = "llava") -> Path:
    """Write the demo model, processor and tokenizer to ``folder`` (deterministic for ``seed``)."""
    import torch

    _check_architecture(architecture)
    folder = Path(folder)
    tokenizer = _build_tokenizer()
    processor, model_class, config = (_llava if architecture == "llava" else _qwen2vl)(tokenizer)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = model_class(config).eval()
    model.generation_config.pad_token_id = 0
    model.generation_config.eos_token_id = 2
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    weights = folder / "model.safetensors"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    marker = {
        "model_id": demo_model_id(architecture),
        "architecture": architecture,
        "version": DEMO_VERSION,
        "seed": int(seed),
        "weights_sha256": digest,
    }
    (folder / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return folder


def _marker(folder: Path) -> dict:
    path = folder / MARKER
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise BackendError(f"cannot read the demo model marker {str(path)!r}: {err}") from err


def ensure_demo_model(
    seed: int = 0, model_dir: str | os.PathLike | None = None, architecture: str = "llava"
) -> Path:
    """The demo model folder, built on first use (atomically, under a file lock)."""
    from filelock import FileLock

    _check_architecture(architecture)
    folder = Path(model_dir) if model_dir is not None else demo_model_dir(seed, None, architecture)
    if (folder / MARKER).is_file():
        _check_marker(folder, seed, architecture)
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if (folder / MARKER).is_file():
            _check_marker(folder, seed, architecture)
            return folder
        if folder.exists() and any(folder.iterdir()):
            raise BackendError(
                f"demo model folder {str(folder)!r} exists but is not a demo model (no {MARKER}); "
                "remove it or choose another model_dir"
            )
        tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".tmp-", dir=folder.parent))
        try:
            build_demo_model(tmp, seed, architecture)
            tmp.chmod(0o755)  # mkdtemp makes it private; the cache may be shared
            if folder.exists():
                folder.rmdir()
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _check_marker(folder: Path, seed: int, architecture: str) -> None:
    marker = _marker(folder)
    found = (marker.get("architecture"), marker.get("seed"), marker.get("version"))
    if found != (architecture, int(seed), DEMO_VERSION):
        raise BackendError(
            f"demo model folder {str(folder)!r} holds architecture={found[0]!r} seed={found[1]!r} "
            f"version={found[2]!r}, not architecture={architecture!r} seed={seed} "
            f"version={DEMO_VERSION}; choose another model_dir"
        )


def demo_revision(folder: str | os.PathLike) -> str:
    marker = _marker(Path(folder))
    return f"v{marker['version']}-seed{marker['seed']}-{marker['weights_sha256'][:16]}"


class DemoGrammar:
    """Builds the constrained-decoding ``LogitsProcessor`` of the demo (see the module docstring).

    Called by :class:`~ants.mllm.hf.TransformersBackend` as ``factory(kind, input_length,
    settings)`` for each batch; token ids come from the folder's ``tokenizer.json``.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))

        def tid(token: str) -> int:
            i = tok.token_to_id(token)
            if i is None:
                raise BackendError(f"demo tokenizer in {str(folder)!r} lacks the token {token!r}")
            return i

        self.eos = tid("</s>")
        self.newline = tid("\n")
        self.dot = tid(".")
        self.digits = [tid(str(k)) for k in range(1, VSNL_ITEMS + 1)]
        self.words = sorted({tid(w) for w in ANSWER_WORDS})

    def __call__(self, kind: str, input_length: int, settings: Mapping) -> list:
        return [_grammar_processor_class()(self, kind, input_length)]


class _GrammarRule:
    """The tokens the demo grammar allows next (the logic of the demo's ``LogitsProcessor``)."""

    def __init__(self, grammar: DemoGrammar, kind: str, input_length: int) -> None:
        self.g = grammar
        self.kind = kind
        self.input_length = input_length

    def _allowed(self, generated: list[int]) -> list[int]:
        g = self.g
        step = len(generated)
        used = set(generated)
        words = [w for w in g.words if w not in used]
        if self.kind == "ens":
            if step >= ENS_MAX_WORDS:
                return [g.eos]
            return words + [g.eos] if step >= ENS_MIN_WORDS else words
        item, slot = divmod(step, 4)
        if item >= VSNL_ITEMS:
            return [g.eos]
        if slot == 0:
            return [g.digits[item]]
        if slot == 1:
            return [g.dot]
        if slot == 2:
            return words
        return [g.newline] if item < VSNL_ITEMS - 1 else [g.eos]

    def __call__(self, input_ids, scores):
        import torch

        generated = input_ids[:, self.input_length :].tolist()
        allowed = torch.zeros_like(scores, dtype=torch.bool)
        for row, tokens in enumerate(generated):
            allowed[row, self._allowed(tokens)] = True
        return scores.masked_fill(~allowed, float("-inf"))


@functools.cache
def _grammar_processor_class() -> type:
    """:class:`_GrammarRule` as a transformers ``LogitsProcessor``, made on first use: the
    module imports no transformers (nor torch), so an answer job served wholly from the cache
    never loads them."""
    from transformers import LogitsProcessor

    return type("_GrammarProcessor", (_GrammarRule, LogitsProcessor), {})


def demo_backend(
    seed: int = 0,
    model_dir: str | os.PathLike | None = None,
    device: str = "cpu",
    architecture: str = "llava",
    dtype: str = "fp32",
) -> TransformersBackend:
    """The demo backend: the transformers backend on the (built-once) demo model folder.

    ``dtype`` (fp32 / fp16 / bf16, part of the cache key) is the precision the fp32 weights of
    the folder are loaded in and the answers generated in, as for the transformers backend;
    fp32 (the default) is what the committed demo results were made with.
    """
    folder = ensure_demo_model(seed, model_dir, architecture)
    return TransformersBackend(
        str(folder),
        revision=demo_revision(folder),
        model_id=demo_model_id(architecture),
        device=device,
        dtype=dtype,
        name="demo",
        logits_processor_factory=DemoGrammar(folder),
    )


def from_config(config: Mapping) -> TransformersBackend:
    """Build from the ``mllm`` config section (``backend: demo``)."""
    seed = config.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"mllm.seed: expected a non-negative int, got {seed!r}")
    dtype = str(config.get("dtype", "fp32"))
    if dtype not in DTYPES:  # before the model folder is built
        raise ValueError(
            f"mllm.backends.demo.dtype: unknown value {dtype!r}; valid values: {', '.join(DTYPES)}"
        )
    return demo_backend(
        seed=seed,
        model_dir=config.get("model_dir"),
        device=str(config.get("device", "cpu")),
        architecture=str(config.get("architecture", "llava")),
        dtype=dtype,
    )
