"""Teacher training: the relevance teacher's recipe (benchmark, tokenizer, SFT, then AGPO on the label reward)."""
