package convert

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"sync"
	"time"

	"github.com/ember-llm/ember/llama/bundle"
	"github.com/ember-llm/ember/quant"
)

// ErrInput is wrapped by every error about the checkpoint's content (a
// missing tensor, a shape that disagrees with the config, a NaN weight).
var ErrInput = errors.New("convert: bad checkpoint")

// Options control a conversion.
type Options struct {
	Out        string // destination bundle directory (replaced atomically)
	Quant      string // bundle.SchemeF32, SchemeQ8Channel or SchemeQ8Block32; "" means q8_channel
	ShardBytes int64  // maximum shard size; <= 0 means bundle.DefaultShardBytes
	Name       string // manifest name
	Source     string // manifest provenance
	// Progress, when set, receives a progress bar (carriage-return updates).
	Progress io.Writer
	// SignKey, when set, signs manifest.json (bundle.SignatureFile).
	SignKey ed25519.PrivateKey
}

// TensorOrder lists the tensors a config needs in the order Convert writes
// them: the embeddings, then layer by layer, then the final norm and the
// classifier, so that a loader streaming the shards gets layers in order.
func TensorOrder(c *bundle.Config) []string {
	names := []string{bundle.TokEmbeddings}
	for l := 0; l < c.NLayers; l++ {
		for _, s := range []string{bundle.AttnNorm, bundle.WQ, bundle.WK, bundle.WV, bundle.WO,
			bundle.FFNNorm, bundle.W1, bundle.W2, bundle.W3} {
			names = append(names, bundle.LayerTensor(l, s))
		}
	}
	names = append(names, bundle.FinalNorm)
	if !c.TiedEmbeddings {
		names = append(names, bundle.Output)
	}
	return names
}

// Convert streams every tensor of src into a new bundle at opts.Out, one
// tensor in memory at a time. tok, when nil, is the source's own tokenizer.
// Matrices are quantized per opts.Quant; vectors (norms) stay f32. Nothing
// appears at opts.Out unless the whole conversion succeeds; an existing
// bundle there is replaced only then.
func Convert(src Source, tok *bundle.Tokenizer, opts Options) (*bundle.Manifest, error) {
	scheme := opts.Quant
	if scheme == "" {
		scheme = bundle.SchemeQ8Channel
	}
	if tok == nil {
		t, err := src.Tokenizer()
		if err != nil {
			return nil, err
		}
		if t == nil {
			return nil, errors.New("convert: the checkpoint holds no tokenizer: give one (-tokenizer tokenizer.model or tokenizer.bin)")
		}
		tok = t
	}
	cfg := src.Config()
	m := &bundle.Manifest{
		Format: bundle.FormatName, Version: bundle.FormatVersion,
		Name: opts.Name, Source: opts.Source,
		Config: cfg, Tokenizer: *tok,
		Quantization: bundle.Quantization{Scheme: scheme},
	}
	if scheme == bundle.SchemeQ8Block32 {
		m.Quantization.GroupSize = quant.GroupSize
	}
	if err := m.ValidateHeader(); err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	w, err := bundle.Create(opts.Out, opts.ShardBytes)
	if err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if !committed { // an error or a panic in a Source: remove the temporary directory
			w.Abort()
		}
	}()
	if opts.SignKey != nil {
		w.SignWith(opts.SignKey)
	}
	c := &converter{w: w, src: src, scheme: scheme, shapes: cfg.ExpectedShapes()}
	names := TensorOrder(&cfg)
	for _, name := range names {
		c.total += c.storedBytes(name)
	}
	if opts.Progress != nil {
		c.bar = &progressBar{out: opts.Progress, total: c.total}
	}
	for _, name := range names {
		if err := c.tensor(name); err != nil {
			c.bar.finish(false)
			return nil, err
		}
	}
	if err := w.Commit(m); err != nil {
		c.bar.finish(false)
		return nil, err
	}
	committed = true
	c.bar.finish(true)
	return m, nil
}

type converter struct {
	w      *bundle.Writer
	src    Source
	scheme string
	shapes map[string][]int
	total  int64
	bar    *progressBar
}

func (c *converter) quantized(shape []int) bool {
	return c.scheme != bundle.SchemeF32 && len(shape) == 2
}

// storedBytes is the size a tensor (with its scales) takes in the bundle.
func (c *converter) storedBytes(name string) int64 {
	shape := c.shapes[name]
	if !c.quantized(shape) {
		return bundle.ByteLength(bundle.F32, shape)
	}
	sdt, sshape := c.scaleSpec(shape)
	return bundle.ByteLength(bundle.Q8, shape) + bundle.ByteLength(sdt, sshape)
}

func (c *converter) scaleSpec(shape []int) (bundle.DType, []int) {
	if c.scheme == bundle.SchemeQ8Channel {
		return bundle.F32, []int{shape[0]}
	}
	return bundle.F16, []int{shape[0], quant.Groups(shape[1])}
}

func (c *converter) tensor(name string) error {
	want := c.shapes[name]
	if qs, ok := c.src.(Q8RowSource); ok {
		shape, next, isQ8, err := qs.TensorQ8Rows(name)
		if err != nil {
			return fmt.Errorf("convert: tensor %q: %w", name, err)
		}
		if isQ8 {
			if err := checkShape(name, shape, want); err != nil {
				return err
			}
			return c.q8Rows(name, want, next)
		}
	}
	var next func([]float32) error
	if rs, ok := c.src.(RowSource); ok {
		shape, f, err := rs.TensorRows(name)
		if err != nil {
			return fmt.Errorf("convert: tensor %q: %w", name, err)
		}
		if err := checkShape(name, shape, want); err != nil {
			return err
		}
		next = f
	} else {
		t, err := c.src.Tensor(name)
		if err != nil {
			return fmt.Errorf("convert: tensor %q: %w", name, err)
		}
		if t == nil {
			return fmt.Errorf("%w: tensor %q is missing", ErrInput, name)
		}
		if err := checkShape(name, t.Shape, want); err != nil {
			return err
		}
		if t.Q8 != nil {
			return c.q8Tensor(name, want, t.Q8)
		}
		rows, cols := rowsCols(want)
		if len(t.F32) != rows*cols {
			return fmt.Errorf("%w: tensor %q has %d values, shape %v needs %d", ErrInput, name, len(t.F32), want, rows*cols)
		}
		next = sliceRows(t.F32)
	}
	return c.f32Tensor(name, want, next)
}

func checkShape(name string, got, want []int) error {
	if want == nil {
		return fmt.Errorf("%w: tensor %q is not part of the model", ErrInput, name)
	}
	if len(got) != len(want) {
		return fmt.Errorf("%w: tensor %q has shape %v, the config needs %v", ErrInput, name, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Errorf("%w: tensor %q has shape %v, the config needs %v", ErrInput, name, got, want)
		}
	}
	return nil
}

func rowsCols(shape []int) (int, int) {
	if len(shape) == 1 {
		return 1, shape[0]
	}
	return shape[0], shape[1]
}

func sliceRows(x []float32) func([]float32) error {
	return func(dst []float32) error {
		if len(dst) > len(x) {
			return io.ErrUnexpectedEOF
		}
		copy(dst, x)
		x = x[len(dst):]
		return nil
	}
}

// chunkRows is how many rows to encode per step: about 1 MiB of f32.
func chunkRows(cols int) int { return max(1, (1<<18)/cols) }

// encoder is an io.Reader producing a tensor's stored bytes a chunk of rows
// at a time, so that neither the f32 rows nor the encoded bytes are ever
// held whole.
type encoder struct {
	name       string
	rows, cols int
	row        int
	next       func([]float32) error
	encode     func(dst []byte, x []float32, row int) ([]byte, error)
	x          []float32
	buf, out   []byte
	bar        *progressBar
}

func (e *encoder) Read(p []byte) (int, error) {
	for len(e.out) == 0 {
		if e.row >= e.rows {
			return 0, io.EOF
		}
		n := min(chunkRows(e.cols), e.rows-e.row)
		x := e.x[:n*e.cols]
		if err := e.next(x); err != nil {
			return 0, fmt.Errorf("read rows %d..%d: %w", e.row, e.row+n-1, err)
		}
		b, err := e.encode(e.buf[:0], x, e.row)
		if err != nil {
			return 0, err
		}
		e.buf, e.out = b, b
		e.row += n
	}
	k := copy(p, e.out)
	e.out = e.out[k:]
	e.bar.add(int64(k))
	return k, nil
}

// nonFinite reports the first NaN or Inf in a chunk of rows.
func nonFinite(name string, x []float32, cols, row0 int) error {
	for i, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%w: tensor %q: row %d column %d is %v", ErrInput, name, row0+i/cols, i%cols, v)
		}
	}
	return nil
}

func (c *converter) f32Tensor(name string, shape []int, next func([]float32) error) error {
	rows, cols := rowsCols(shape)
	e := &encoder{name: name, rows: rows, cols: cols, next: next, bar: c.bar,
		x: make([]float32, min(chunkRows(cols), rows)*cols)}
	e.bar.tensor(name)
	if !c.quantized(shape) {
		e.encode = func(dst []byte, x []float32, row int) ([]byte, error) {
			if err := nonFinite(name, x, cols, row); err != nil {
				return nil, err
			}
			return quant.AppendF32LE(dst, x), nil
		}
		return c.write(bundle.TensorSpec{Name: name, DType: bundle.F32, Shape: shape}, e)
	}
	pc := bundle.PadQ8(cols)
	q := make([]int8, min(chunkRows(cols), rows)*pc)
	var writeScales func() error
	switch c.scheme {
	case bundle.SchemeQ8Channel:
		scales := make([]float32, rows)
		e.encode = func(dst []byte, x []float32, row int) ([]byte, error) {
			n := len(x) / cols
			err := parallelRows(n, cols, func(r int) error {
				s, err := quant.QuantizeRowChannel(q[r*pc:(r+1)*pc], x[r*cols:(r+1)*cols])
				if err != nil {
					return rowErr(name, x[r*cols:(r+1)*cols], row+r, err)
				}
				scales[row+r] = s
				return nil
			})
			if err != nil {
				return nil, err
			}
			return append(dst, quant.Int8Bytes(q[:n*pc])...), nil
		}
		writeScales = func() error {
			b := quant.AppendF32LE(nil, scales)
			return c.writeBytes(bundle.TensorSpec{Name: name + bundle.ScaleSuffix, DType: bundle.F32, Shape: []int{rows}}, b)
		}
	case bundle.SchemeQ8Block32:
		g := quant.Groups(cols)
		scales := make([]uint16, rows*g)
		e.encode = func(dst []byte, x []float32, row int) ([]byte, error) {
			n := len(x) / cols
			err := parallelRows(n, cols, func(r int) error {
				if err := quant.QuantizeRowBlock32(q[r*pc:(r+1)*pc], scales[(row+r)*g:(row+r+1)*g], x[r*cols:(r+1)*cols]); err != nil {
					return rowErr(name, x[r*cols:(r+1)*cols], row+r, err)
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
			return append(dst, quant.Int8Bytes(q[:n*pc])...), nil
		}
		writeScales = func() error { return c.writeF16Scales(name, rows, g, scales) }
	}
	if err := c.write(bundle.TensorSpec{Name: name, DType: bundle.Q8, Shape: shape,
		Scale: name + bundle.ScaleSuffix, GroupSize: c.groupSize(cols)}, e); err != nil {
		return err
	}
	return writeScales()
}

// parallelRows runs f for rows 0..n-1 on all CPUs when there is enough
// work, and returns the error of the lowest failing row (so that messages
// do not depend on scheduling).
func parallelRows(n, cols int, f func(r int) error) error {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 || n*cols < 1<<15 {
		for r := range n {
			if err := f(r); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := w * n / workers; r < (w+1)*n/workers; r++ {
				if err := f(r); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *converter) groupSize(cols int) int {
	if c.scheme == bundle.SchemeQ8Channel {
		return cols
	}
	return quant.GroupSize
}

// rowErr names the tensor and row of a quantization failure, and the column
// of a non-finite value.
func rowErr(name string, x []float32, row int, err error) error {
	if errors.Is(err, quant.ErrNonFinite) {
		if e := nonFinite(name, x, len(x), row); e != nil {
			return e
		}
	}
	return fmt.Errorf("%w: tensor %q: row %d: %w", ErrInput, name, row, err)
}

func (c *converter) writeF16Scales(name string, rows, groups int, scales []uint16) error {
	r := &f16Reader{s: scales, pad: len(scales)%2 == 1, bar: c.bar}
	return c.write(bundle.TensorSpec{Name: name + bundle.ScaleSuffix, DType: bundle.F16, Shape: []int{rows, groups}}, r)
}

// f16Reader yields f16 scales as little-endian bytes without a byte copy of
// them all (a 128k-vocabulary embedding has 16 Mi scales), then the two
// zero bytes that pad an f16 tensor of odd length to 4 bytes.
type f16Reader struct {
	s   []uint16
	pad bool
	bar *progressBar
}

func (r *f16Reader) Read(p []byte) (int, error) {
	n := 0
	for len(r.s) > 0 && len(p)-n >= 2 {
		binary.LittleEndian.PutUint16(p[n:], r.s[0])
		r.s = r.s[1:]
		n += 2
	}
	if len(r.s) == 0 && r.pad && len(p)-n >= 2 {
		p[n], p[n+1] = 0, 0
		r.pad = false
		n += 2
	}
	if n == 0 && len(p) > 0 {
		if len(r.s) > 0 || r.pad {
			return 0, io.ErrShortBuffer
		}
		return 0, io.EOF
	}
	r.bar.add(int64(n))
	return n, nil
}

// q8Tensor stores whole pre-quantized Q8_0 data (a Source without
// Q8RowSource), as q8Rows does.
func (c *converter) q8Tensor(name string, shape []int, q8 *Q8Blocks) error {
	rows, cols := rowsCols(shape)
	pc, g := bundle.PadQ8(cols), quant.Groups(cols)
	if len(shape) != 2 || len(q8.Q) != rows*pc || len(q8.Scales) != rows*g {
		return fmt.Errorf("%w: tensor %q: Q8_0 data has %d values and %d scales, shape %v needs %d and %d",
			ErrInput, name, len(q8.Q), len(q8.Scales), shape, rows*pc, rows*g)
	}
	if err := checkQ8Scales(name, q8.Scales, 0, g); err != nil {
		return err
	}
	return c.q8Rows(name, shape, sliceQ8Rows(q8))
}

func (c *converter) writeBytes(spec bundle.TensorSpec, b []byte) error {
	return c.write(spec, &countingReader{b: b, bar: c.bar})
}

func (c *converter) write(spec bundle.TensorSpec, r io.Reader) error {
	if err := c.w.WriteTensor(spec, r); err != nil {
		if errors.Is(err, ErrInput) {
			return errors.Unwrap(err) // keep the bundle prefix out; ErrInput names the tensor
		}
		return err
	}
	return nil
}

type countingReader struct {
	b   []byte
	bar *progressBar
}

func (r *countingReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	r.bar.add(int64(n))
	return n, nil
}

// progressBar draws "[=====>    ]  45%  1.2/2.7 GiB  layers.3…" on one
// line, at most five times a second. A nil bar draws nothing.
type progressBar struct {
	out         io.Writer
	total, done int64
	name        string
	last        time.Time
	start       time.Time
}

func (b *progressBar) tensor(name string) {
	if b == nil {
		return
	}
	if b.start.IsZero() {
		b.start = time.Now()
	}
	b.name = name
	b.draw(false)
}

func (b *progressBar) add(n int64) {
	if b == nil {
		return
	}
	b.done += n
	b.draw(false)
}

func (b *progressBar) draw(force bool) {
	now := time.Now()
	if !force && now.Sub(b.last) < 200*time.Millisecond {
		return
	}
	b.last = now
	const width = 30
	frac := 1.0
	if b.total > 0 {
		frac = float64(b.done) / float64(b.total)
	}
	fill := int(frac * width)
	bar := make([]byte, width)
	for i := range bar {
		switch {
		case i < fill:
			bar[i] = '='
		case i == fill:
			bar[i] = '>'
		default:
			bar[i] = ' '
		}
	}
	fmt.Fprintf(b.out, "\r[%s] %3.0f%% %s/%s %-40.40s", bar, 100*frac, humanBytes(b.done), humanBytes(b.total), b.name)
}

func (b *progressBar) finish(ok bool) {
	if b == nil {
		return
	}
	if ok {
		b.name = fmt.Sprintf("done in %.1fs", time.Since(b.start).Seconds())
		b.draw(true)
	}
	fmt.Fprintln(b.out)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
}
