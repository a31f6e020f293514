package llama

import (
	"math"

	"github.com/ember-llm/ember/llama/bundle"
)

// refModel is an independent, deliberately plain Llama forward pass in
// float64, one token at a time, with no sharing of code with the engine. It
// reads weights from a map of name → row-major values; names and shapes are
// given by the caller's lookup so that it can run on HF-layout weights too.
type refModel struct {
	dim, hidden, layers, heads, kvHeads, headDim, vocab int
	theta, eps                                          float64
	rotateHalf                                          bool // HF RoPE: pairs (i, i+head_dim/2)
	get                                                 func(kind string, layer int) []float32
	keys, values                                        [][][]float64 // (layer)(pos)(kv_dim)
}

func (r *refModel) matvec(w []float32, x []float64, rows int) []float64 {
	cols := len(x)
	out := make([]float64, rows)
	for i := 0; i < rows; i++ {
		var s float64
		for j := 0; j < cols; j++ {
			s += float64(w[i*cols+j]) * x[j]
		}
		out[i] = s
	}
	return out
}

func (r *refModel) norm(x []float64, w []float32) []float64 {
	var ss float64
	for _, v := range x {
		ss += v * v
	}
	inv := 1 / math.Sqrt(ss/float64(len(x))+r.eps)
	out := make([]float64, len(x))
	for i := range x {
		out[i] = x[i] * inv * float64(w[i])
	}
	return out
}

func (r *refModel) rope(v []float64, pos int) {
	hd := r.headDim
	for h := 0; h < len(v)/hd; h++ {
		for i := 0; i < hd/2; i++ {
			freq := 1 / math.Pow(r.theta, float64(2*i)/float64(hd))
			c, s := math.Cos(float64(pos)*freq), math.Sin(float64(pos)*freq)
			a, b := h*hd+2*i, h*hd+2*i+1
			if r.rotateHalf {
				a, b = h*hd+i, h*hd+i+hd/2
			}
			x0, x1 := v[a], v[b]
			v[a] = x0*c - x1*s
			v[b] = x0*s + x1*c
		}
	}
}

// forward returns the logits of token at pos (positions must be fed in order).
func (r *refModel) forward(token, pos int) []float64 {
	if r.keys == nil {
		r.keys = make([][][]float64, r.layers)
		r.values = make([][][]float64, r.layers)
	}
	emb := r.get("emb", 0)
	x := make([]float64, r.dim)
	for i := range x {
		x[i] = float64(emb[token*r.dim+i])
	}
	kvDim := r.kvHeads * r.headDim
	for l := 0; l < r.layers; l++ {
		h := r.norm(x, r.get("attn_norm", l))
		q := r.matvec(r.get("wq", l), h, r.heads*r.headDim)
		k := r.matvec(r.get("wk", l), h, kvDim)
		v := r.matvec(r.get("wv", l), h, kvDim)
		r.rope(q, pos)
		r.rope(k, pos)
		r.keys[l] = append(r.keys[l][:pos], k)
		r.values[l] = append(r.values[l][:pos], v)
		att := make([]float64, r.heads*r.headDim)
		for hh := 0; hh < r.heads; hh++ {
			kvh := hh * r.kvHeads / r.heads
			scores := make([]float64, pos+1)
			mx := math.Inf(-1)
			for s := 0; s <= pos; s++ {
				var d float64
				for i := 0; i < r.headDim; i++ {
					d += q[hh*r.headDim+i] * r.keys[l][s][kvh*r.headDim+i]
				}
				scores[s] = d / math.Sqrt(float64(r.headDim))
				mx = math.Max(mx, scores[s])
			}
			var sum float64
			for s := range scores {
				scores[s] = math.Exp(scores[s] - mx)
				sum += scores[s]
			}
			for s := range scores {
				for i := 0; i < r.headDim; i++ {
					att[hh*r.headDim+i] += scores[s] / sum * r.values[l][s][kvh*r.headDim+i]
				}
			}
		}
		o := r.matvec(r.get("wo", l), att, r.dim)
		for i := range x {
			x[i] += o[i]
		}
		h = r.norm(x, r.get("ffn_norm", l))
		g := r.matvec(r.get("w1", l), h, r.hidden)
		u := r.matvec(r.get("w3", l), h, r.hidden)
		for i := range g {
			g[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
		}
		d := r.matvec(r.get("w2", l), g, r.dim)
		for i := range x {
			x[i] += d[i]
		}
	}
	x = r.norm(x, r.get("norm", 0))
	return r.matvec(r.get("output", 0), x, r.vocab)
}

// refFromBundleWeights builds a reference model over canonical-name weights.
func refFromBundleWeights(c bundle.Config, w map[string][]float32) *refModel {
	names := map[string]string{"attn_norm": bundle.AttnNorm, "wq": bundle.WQ, "wk": bundle.WK, "wv": bundle.WV,
		"wo": bundle.WO, "ffn_norm": bundle.FFNNorm, "w1": bundle.W1, "w2": bundle.W2, "w3": bundle.W3}
	return &refModel{
		dim: c.Dim, hidden: c.HiddenDim, layers: c.NLayers, heads: c.NHeads, kvHeads: c.NKVHeads,
		headDim: c.HeadDim, vocab: c.VocabSize, theta: c.RopeTheta, eps: c.NormEps,
		get: func(kind string, l int) []float32 {
			switch kind {
			case "emb":
				return w[bundle.TokEmbeddings]
			case "norm":
				return w[bundle.FinalNorm]
			case "output":
				if c.TiedEmbeddings {
					return w[bundle.TokEmbeddings]
				}
				return w[bundle.Output]
			}
			return w[bundle.LayerTensor(l, names[kind])]
		},
	}
}
