"""Messages tokenised by hand, for testing NLU components without a tokenizer."""

from __future__ import annotations

from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message


def tokenized(words: list[str]) -> Message:
    """A message whose text is the words joined, with one token per word."""
    msg = Message(data={TEXT: "".join(words)})
    offsets = [sum(len(w) for w in words[:i]) for i in range(len(words))]
    msg.set(TOKENS_NAMES[TEXT], [Token(word, offset) for word, offset in zip(words, offsets, strict=True)])
    return msg
