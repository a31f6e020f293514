# Computes the pre-tokenizer golden splits with the reference regex engine
# (Python regex module, which supports \p{L} and lookahead):
#   python3 gen_pretok.py strings.json out.json
# TestPreTokenizerGolden compares the hand-written splitters against the result.
import json, regex, sys
pats = {
 "gpt2": r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
 "llama3": r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
 "qwen2": r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
}
strs = json.load(open(sys.argv[1]))  # a JSON list of strings
out = {}
for name, p in pats.items():
    r = regex.compile(p)
    out[name] = [r.findall(s) for s in strs]
json.dump({"strings": strs, "splits": out}, open(sys.argv[2], "w"), ensure_ascii=False)
