package tokenizer_test

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/ember-llm/ember/llama/bundle"
	"github.com/ember-llm/ember/tokenizer"
)

// spModelBytes serializes a vocabulary as a SentencePiece BPE ModelProto
// with the identity normalizer, so spm_encode can run it.
func spModelBytes(bt *bundle.Tokenizer) []byte {
	var out []byte
	for i, p := range bt.Pieces {
		var sp []byte
		sp = protowire.AppendTag(sp, 1, protowire.BytesType)
		sp = protowire.AppendString(sp, p)
		sp = protowire.AppendTag(sp, 2, protowire.Fixed32Type)
		sp = protowire.AppendFixed32(sp, math.Float32bits(bt.Scores[i]))
		sp = protowire.AppendTag(sp, 3, protowire.VarintType)
		sp = protowire.AppendVarint(sp, uint64(bt.Types[i]))
		out = protowire.AppendTag(out, 1, protowire.BytesType)
		out = protowire.AppendBytes(out, sp)
	}
	varint := func(b []byte, num protowire.Number, v int64) []byte {
		b = protowire.AppendTag(b, num, protowire.VarintType)
		return protowire.AppendVarint(b, uint64(v))
	}
	b2i := func(b bool) int64 {
		if b {
			return 1
		}
		return 0
	}
	var ts []byte
	ts = varint(ts, 3, 2) // model_type BPE
	ts = varint(ts, 4, int64(len(bt.Pieces)))
	ts = varint(ts, 35, b2i(bt.ByteFallback))
	ts = varint(ts, 40, int64(bt.UNK))
	ts = varint(ts, 41, int64(bt.BOS))
	ts = varint(ts, 42, int64(bt.EOS))
	ts = varint(ts, 43, int64(bt.PAD))
	out = protowire.AppendTag(out, 2, protowire.BytesType)
	out = protowire.AppendBytes(out, ts)
	var ns []byte
	ns = protowire.AppendTag(ns, 1, protowire.BytesType)
	ns = protowire.AppendString(ns, "identity")
	ns = varint(ns, 3, b2i(bt.AddDummyPrefix))
	ns = varint(ns, 4, b2i(bt.RemoveExtraWhitespaces))
	out = protowire.AppendTag(out, 3, protowire.BytesType)
	out = protowire.AppendBytes(out, ns)
	return out
}

func TestTok512(t *testing.T) {
	bt, err := tokenizer.LoadFile(modelFile(t, "stories260K/tok512.bin"), 512)
	require.NoError(t, err)
	require.Len(t, bt.Pieces, 512)
	require.Equal(t, []int{0, 1, 2, -1}, []int{bt.UNK, bt.BOS, bt.EOS, bt.PAD})
	require.True(t, bt.ByteFallback)
	require.True(t, bt.AddDummyPrefix)
	require.Equal(t, "<0x0A>", bt.Pieces[13])
	require.Equal(t, int32(bundle.TokenByte), bt.Types[13])
	require.Equal(t, int32(bundle.TokenControl), bt.Types[1])

	// The GGUF export of the same model carries the same vocabulary.
	gt := loadGGUF(t, "stories260K/stories260K.gguf").Info()
	require.Equal(t, gt.Pieces, bt.Pieces)
	require.Equal(t, gt.Scores, bt.Scores)
	require.Equal(t, gt.Types, bt.Types)

	tok, err := tokenizer.New(bt)
	require.NoError(t, err)
	data, err := os.ReadFile(modelFile(t, "stories260K/expected.json"))
	require.NoError(t, err)
	var exp struct {
		Cases []struct{ Text string } `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(data, &exp))
	for _, c := range exp.Cases {
		ids := tok.Encode(c.Text, tokenizer.EncodeOptions{AddBOS: true})
		require.Equal(t, 1, ids[0])
		require.Equal(t, c.Text, tok.Decode(ids))
		// Streaming gives the same text.
		d := tok.NewDecoder()
		var sb strings.Builder
		for _, id := range ids {
			sb.WriteString(d.Add(id))
		}
		sb.WriteString(d.Flush())
		require.Equal(t, c.Text, sb.String())
	}
	// The story opening is four whole pieces after BOS.
	ids := tok.Encode("Once upon a time", tokenizer.EncodeOptions{AddBOS: true})
	require.Equal(t, []int{1, 403, 407, 261, 378}, ids)
	require.Equal(t, "▁Once", tok.Piece(403))
	require.Equal(t, "Once upon a time", tok.Decode(ids))

	if _, err := exec.LookPath("spm_encode"); err != nil {
		t.Skip("spm_encode not installed (Debian package sentencepiece)")
	}
	model := filepath.Join(t.TempDir(), "tok512.model")
	require.NoError(t, os.WriteFile(model, spModelBytes(bt), 0o644))
	var plain []string
	for _, s := range generatedStrings(1500) {
		if !strings.Contains(s, "\n") {
			plain = append(plain, s)
		}
	}
	want := spmEncode(t, model, plain)
	for i, s := range plain {
		got := tok.Encode(s, tokenizer.EncodeOptions{})
		require.Equal(t, nilIfEmpty(want[i]), nilIfEmpty(got), "string %d %q", i, s)
		require.Equal(t, strings.ReplaceAll(s, "▁", " "), tok.Decode(got), "round trip of %q", s)
	}
	t.Logf("%d strings identical to spm_encode on tok512", len(plain))
}
