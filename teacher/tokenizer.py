"""The teacher's tokenizer: a byte-level BPE trained with ``tokenizers``, in Qwen2's exact pipeline, with ChatML.

``AutoTokenizer`` loads the tokenizer of a qwen2 model directory as ``Qwen2Tokenizer``, which keeps only the
saved vocabulary, merges and special tokens and rebuilds the normalizer, pre-tokenizer and decoder itself. So the
BPE is trained in that very pipeline (shared with :mod:`rlvr.tiny_lm`); otherwise a reloaded tokenizer would
split text differently from the one the model was trained with.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from relevance.parsing import LABEL_PREFIX
from relevance.prompts import PromptTemplate, get_template, render_labels
from relevance.schemas import DEFAULT_SCHEMA, LabelSchema, get_schema
from rlvr.tiny_lm import QWEN2_SPLIT

PAD = "<|endoftext|>"  # Qwen2's own pad/end-of-text token
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"  # ends every chat turn, so it is the end-of-sequence token for generation
SPECIAL_TOKENS = (PAD, IM_START, IM_END)

# ChatML, as Qwen2 chat models use it. ``add_generation_prompt`` opens the assistant turn, so a prompt rendered
# with it followed by the assistant's text and IM_END is exactly the rendering of the whole conversation.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def qwen2_pipeline(core: Tokenizer) -> Tokenizer:
    """Give ``core`` Qwen2's normalizer, pre-tokenizer and decoder (what ``Qwen2Tokenizer`` rebuilds on load)."""
    core.normalizer = normalizers.NFC()
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    core.decoder = decoders.ByteLevel()
    return core


def template_phrases(
    template: str | PromptTemplate = "compact", schema: str | LabelSchema = DEFAULT_SCHEMA, min_chars: int = 24
) -> list[str]:
    """The prompt's fixed passages (system text; user text between the query and ad slots) of ``min_chars`` or more.

    On CPU, time per training step and per generated token grows with the prompt, and in the compact prompt
    the fixed label list and instructions are two thirds of its tokens. Each passage becomes one token, so the
    model reads the same text in a third of the tokens; any other text still encodes through the BPE.
    """
    tpl, sch = get_template(template), get_schema(schema)
    slot = "\x00"
    user = tpl.user.format(
        query=slot, ad=slot, labels=render_labels(sch, tpl), names=", ".join(sch.names), prefix=LABEL_PREFIX
    )
    return [p for p in (tpl.system, *user.split(slot)) if len(p) >= min_chars]


def train_tokenizer(
    texts: Iterable[str], vocab_size: int = 2048, min_frequency: int = 2, phrases: Iterable[str] = ()
) -> PreTrainedTokenizerFast:
    """A byte-level BPE of about ``vocab_size`` tokens trained on ``texts``, with ChatML specials and template.

    Every byte is in the base alphabet, so any text encodes (no unknown token); specials take the first ids.
    ``phrases`` (see :func:`template_phrases`) become single, non-special tokens after the BPE vocabulary: they
    decode as text, and ``Qwen2Tokenizer`` restores them on load from the saved added-token list.
    """
    core = qwen2_pipeline(Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False)))
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer=trainer)
    core.add_tokens([AddedToken(p, special=False, normalized=False) for p in phrases])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token=PAD, eos_token=IM_END, unk_token=None)
    tokenizer.add_special_tokens({"additional_special_tokens": [IM_START, IM_END]})
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.padding_side = "left"  # generation pads prompts on the left
    return tokenizer
