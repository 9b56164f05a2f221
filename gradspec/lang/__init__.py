"""The expression language: tokenizer, parser and syntax tree of gradspec's own grammar."""
