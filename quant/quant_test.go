package quant

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// refQ8_0 is a straightforward transcription of the arithmetic of ggml's
// quantize_row_q8_0_ref for one row whose length is a multiple of 32, with
// the independent f16 conversion of refF16.
func refQ8_0(ref *refF16, x []float32) (q []int8, d []uint16) {
	for i := 0; i < len(x)/32; i++ {
		var amax float32
		for j := 0; j < 32; j++ {
			amax = float32(math.Max(float64(amax), math.Abs(float64(x[i*32+j]))))
		}
		dd := amax / 127
		var id float32
		if dd != 0 {
			id = 1.0 / dd
		}
		d = append(d, ref.convert(dd))
		for j := 0; j < 32; j++ {
			x0 := x[i*32+j] * id
			q = append(q, int8(math.Round(float64(x0)))) // roundf: half away from zero
		}
	}
	return q, d
}

func randRow(rng *rand.Rand, n int, scale float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * scale)
	}
	return x
}

func TestBlock32BitExactWithGGML(t *testing.T) {
	ref := newRefF16()
	rng := rand.New(rand.NewPCG(7, 8))
	for trial := 0; trial < 3000; trial++ {
		scale := math.Pow(10, rng.Float64()*10-6) // 1e-6 .. 1e4
		x := randRow(rng, 32*(1+rng.IntN(4)), scale)
		if trial%7 == 0 { // exact ties: x/d lands on k+0.5
			for i := range x {
				x[i] = float32(rng.IntN(255)-127) + 0.5
			}
			x[0] = 127
		}
		if trial%11 == 0 {
			x[rng.IntN(len(x))] = 0
		}
		wantQ, wantD := refQ8_0(ref, x)
		gotQ := make([]int8, len(x))
		gotD := make([]uint16, len(x)/32)
		require.NoError(t, QuantizeRowBlock32(gotQ, gotD, x))
		require.Equal(t, wantD, gotD, "trial %d scales", trial)
		require.Equal(t, wantQ, gotQ, "trial %d values", trial)
	}
}

func TestBlock32PartialGroupPadding(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	x := randRow(rng, 45, 1) // one full group and a group of 13
	q := make([]int8, 64)
	for i := range q {
		q[i] = 99 // must be overwritten, padding included
	}
	d := make([]uint16, 2)
	require.NoError(t, QuantizeRowBlock32(q, d, x))
	require.Equal(t, make([]int8, 64-45), q[45:], "padding is zero")

	// The partial group quantizes as ggml would the zero-padded group.
	padded := append(append([]float32(nil), x...), make([]float32, 64-45)...)
	wq, wd := refQ8_0(newRefF16(), padded)
	require.Equal(t, wd, d)
	require.Equal(t, wq, q)

	back := make([]float32, 45)
	DequantizeRowBlock32(back, q, d)
	for i := range x {
		require.InDelta(t, x[i], back[i], float64(F16ToF32(d[i/32]))*0.5+1e-6)
	}
}

func TestChannelRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	rows, cols := 17, 70
	x := randRow(rng, rows*cols, 0.02)
	for c := 0; c < cols; c++ {
		x[3*cols+c] = 0 // an all-zero row
	}
	q, s, err := QuantizeChannel(x, rows, cols)
	require.NoError(t, err)
	require.Len(t, q, rows*96)
	require.Len(t, s, rows)
	require.Equal(t, float32(0), s[3], "all-zero row has scale 0")
	for r := 0; r < rows; r++ {
		require.Equal(t, make([]int8, 96-cols), q[r*96+cols:(r+1)*96], "row %d padding", r)
		m := maxAbs(x[r*cols : (r+1)*cols])
		require.Equal(t, m/127, s[r], "row %d: scale is maxabs/127", r)
		hit := false
		for _, v := range q[r*96 : r*96+cols] {
			require.LessOrEqual(t, int(v), 127)
			require.GreaterOrEqual(t, int(v), -127)
			hit = hit || v == 127 || v == -127
		}
		require.Equal(t, m != 0, hit, "row %d: the max element maps to ±127", r)
	}
	back, err := DequantizeChannel(q, s, rows, cols)
	require.NoError(t, err)
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			require.InDelta(t, x[r*cols+c], back[r*cols+c], float64(s[r])*0.5000001)
		}
	}
	st := Compare(x, back)
	require.Greater(t, st.SNR(), 35.0, "int8 per-channel SNR on Gaussian data")
}

func TestBlock32Matrix(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	rows, cols := 5, 172 // 172 is not a multiple of 32
	x := randRow(rng, rows*cols, 1)
	q, s, err := QuantizeBlock32(x, rows, cols)
	require.NoError(t, err)
	require.Len(t, q, rows*192)
	require.Len(t, s, rows*6)
	back, err := DequantizeBlock32(q, s, rows, cols)
	require.NoError(t, err)
	st := Compare(x, back)
	require.Greater(t, st.SNR(), 38.0)
	_, err = DequantizeBlock32(q[1:], s, rows, cols)
	require.ErrorIs(t, err, ErrShape)
}

func TestExtremeValues(t *testing.T) {
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	for _, bad := range []float32{inf, -inf, nan} {
		x := []float32{1, 2, bad, 4}
		_, _, err := QuantizeChannel(x, 1, 4)
		require.ErrorIs(t, err, ErrNonFinite)
		require.Contains(t, err.Error(), "row 0")
		require.Contains(t, err.Error(), "element 2")
		_, _, err = QuantizeBlock32(x, 2, 2)
		require.ErrorIs(t, err, ErrNonFinite)
		require.Contains(t, err.Error(), "row 1")
	}

	// Huge values: per-channel has an f32 scale, so MaxFloat32 is fine.
	x := []float32{math.MaxFloat32, -math.MaxFloat32 / 2, 1, 0}
	q, s, err := QuantizeChannel(x, 1, 4)
	require.NoError(t, err)
	require.Equal(t, int8(127), q[0])
	require.Contains(t, []int8{-63, -64}, q[1], "x/scale is 63.5 up to rounding")
	require.Equal(t, []int8{0, 0}, q[2:4])
	back, err := DequantizeChannel(q, s, 1, 4)
	require.NoError(t, err)
	require.False(t, math.IsInf(float64(back[0]), 0))
	require.InEpsilon(t, math.MaxFloat32, back[0], 1e-6)

	// Q8_0: the scale is f16, so amax/127 beyond 65504 is refused, not Inf.
	_, _, err = QuantizeBlock32([]float32{1e7, 1}, 1, 2)
	require.ErrorIs(t, err, ErrRange)
	require.Contains(t, err.Error(), "group 0")
	_, _, err = QuantizeBlock32([]float32{65504 * 127}, 1, 1)
	require.NoError(t, err)

	// Denormals: no NaN, no panic, the result stays within the input's scale.
	den := math.Float32frombits(1) // smallest f32 denormal
	for _, x := range [][]float32{{den, -den, 0}, {den * 200, den, -den * 50}, {1e-38, -3e-39, 0}} {
		q, s, err := QuantizeChannel(x, 1, len(x))
		require.NoError(t, err)
		back, err := DequantizeChannel(q, s, 1, len(x))
		require.NoError(t, err)
		for i := range x {
			require.False(t, math.IsNaN(float64(back[i])))
			require.LessOrEqual(t, math.Abs(float64(back[i]-x[i])), 2*math.Abs(float64(maxAbs(x)))+1e-45)
		}
		qb, sb, err := QuantizeBlock32(x, 1, len(x))
		require.NoError(t, err)
		for _, v := range qb {
			require.LessOrEqual(t, int(v), 127)
			require.GreaterOrEqual(t, int(v), -127)
		}
		require.Equal(t, uint16(0), sb[0], "a denormal group's f16 scale is 0")
	}

	// All-zero inputs, including negative zero.
	negz := float32(math.Copysign(0, -1))
	q, s, err = QuantizeChannel([]float32{0, negz, 0}, 1, 3)
	require.NoError(t, err)
	require.Equal(t, []float32{0}, s)
	require.Equal(t, make([]int8, 32), q)
	qb, sb, err := QuantizeBlock32([]float32{0, negz, 0}, 1, 3)
	require.NoError(t, err)
	require.Equal(t, []uint16{0}, sb)
	require.Equal(t, make([]int8, 32), qb)

	// Empty and impossible shapes.
	q, s, err = QuantizeChannel(nil, 0, 8)
	require.NoError(t, err)
	require.Empty(t, q)
	require.Empty(t, s)
	_, _, err = QuantizeChannel(make([]float32, 5), 2, 3)
	require.ErrorIs(t, err, ErrShape)
	_, _, err = QuantizeChannel(nil, -1, 3)
	require.ErrorIs(t, err, ErrShape)
	_, _, err = QuantizeBlock32(nil, math.MaxInt/2, 64)
	require.ErrorIs(t, err, ErrShape)
}

func TestQ8_0DecodeEncode(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	rows, cols := 3, 64
	x := randRow(rng, rows*cols, 0.5)
	q, s, err := QuantizeBlock32(x, rows, cols)
	require.NoError(t, err)
	raw, err := EncodeQ8_0(q, s, rows, cols)
	require.NoError(t, err)
	require.Len(t, raw, rows*2*34)
	require.Equal(t, int64(len(raw)), Q8_0Bytes(int64(rows), int64(cols)))
	// Block layout: f16 scale little-endian, then 32 int8.
	require.Equal(t, byte(s[0]), raw[0])
	require.Equal(t, byte(s[0]>>8), raw[1])
	require.Equal(t, byte(q[0]), raw[2])
	require.Equal(t, byte(q[32]), raw[34+2])

	q2, s2, err := DecodeQ8_0(raw, rows, cols)
	require.NoError(t, err)
	require.Equal(t, q, q2)
	require.Equal(t, s, s2)

	_, _, err = DecodeQ8_0(raw[:len(raw)-1], rows, cols)
	require.ErrorIs(t, err, ErrShape)
	_, _, err = DecodeQ8_0(raw, rows, 60)
	require.ErrorIs(t, err, ErrShape)
	bad := append([]byte(nil), raw...)
	bad[34], bad[35] = 0x00, 0x7c // Inf scale in row 0 group 1
	_, _, err = DecodeQ8_0(bad, rows, cols)
	require.ErrorIs(t, err, ErrNonFinite)
	require.Contains(t, err.Error(), "row 0 group 1")
	require.Equal(t, int64(-1), Q8_0Bytes(math.MaxInt64/2, 64))
	require.Equal(t, int64(-1), Q8_0Bytes(1, 33))
}

func TestPack(t *testing.T) {
	q := []int8{1, -1, 127, -128, 0, 2, 3, 4}
	w, err := Pack(q)
	require.NoError(t, err)
	require.Equal(t, []uint32{0x807f_ff01, 0x0403_0200}, w, "element 0 in the low byte")
	require.Equal(t, q, Unpack(w))
	require.Equal(t, []byte{1, 0xff, 0x7f, 0x80, 0, 2, 3, 4}, Int8Bytes(q))
	require.Equal(t, q, BytesInt8(Int8Bytes(q)))
	_, err = Pack(q[:3])
	require.ErrorIs(t, err, ErrShape)
	require.Nil(t, Int8Bytes(nil))

	p, err := PadRows([]int8{1, 2, 3, 4, 5, 6}, 2, 3)
	require.NoError(t, err)
	require.Len(t, p, 64)
	require.Equal(t, []int8{1, 2, 3}, p[:3])
	require.Equal(t, []int8{4, 5, 6}, p[32:35])
	require.Equal(t, make([]int8, 29), p[35:])
}

func TestDequantizeGroups(t *testing.T) {
	dst := make([]float32, 5)
	require.NoError(t, DequantizeGroups(dst, []int8{1, 2, 3, 4, 5}, []float32{0.5, 2}, 3))
	require.Equal(t, []float32{0.5, 1, 1.5, 8, 10}, dst)
	require.ErrorIs(t, DequantizeGroups(dst, []int8{1}, []float32{1, 1}, 3), ErrShape)
	require.ErrorIs(t, DequantizeGroups(dst, []int8{1, 2, 3, 4, 5}, []float32{1}, 3), ErrShape)
	require.ErrorIs(t, DequantizeGroups(dst, []int8{1, 2, 3, 4, 5}, []float32{1}, 0), ErrShape)
}

func TestErrorStats(t *testing.T) {
	ref := []float32{1, -2, 3, 0}
	got := []float32{1, -2.5, 3, 0.5}
	s := Compare(ref, got)
	require.Equal(t, int64(4), s.N)
	require.Equal(t, 0.5, s.MaxAbsErr)
	require.InDelta(t, math.Sqrt(0.5/4), s.RMSE(), 1e-12)
	require.InDelta(t, 10*math.Log10(14/0.5), s.SNR(), 1e-12)
	exact := Compare(ref, ref)
	require.True(t, math.IsInf(exact.SNR(), 1))
	var m ErrorStats
	m.Merge(s)
	m.Merge(exact)
	require.Equal(t, int64(8), m.N)
	require.Equal(t, 0.5, m.MaxAbsErr)
	var empty ErrorStats
	require.Equal(t, 0.0, empty.RMSE())
	nan := Compare([]float32{1}, []float32{float32(math.NaN())})
	require.True(t, math.IsNaN(nan.MaxAbsErr), "a NaN in the approximation shows in the max error")
}

func TestSentinelsWrapped(t *testing.T) {
	_, _, err := QuantizeBlock32([]float32{float32(math.NaN())}, 1, 1)
	require.True(t, errors.Is(err, ErrNonFinite))
}

// cpuLoop runs f b.N times and also reports throughput per CPU second
// ("cpu-MB/s"), which stays meaningful when other processes share the cores.
func cpuLoop(b *testing.B, bytes int64, f func()) {
	b.SetBytes(bytes)
	b.ResetTimer()
	start, n := cpuTime(), 0
	for b.Loop() {
		f()
		n++
	}
	if d := cpuTime() - start; d > 0 {
		b.ReportMetric(float64(bytes)*float64(n)/d.Seconds()/1e6, "cpu-MB/s")
	}
}

func benchMatrix(b *testing.B) (x []float32, rows, cols int) {
	rows, cols = 256, 4096
	return randRow(rand.New(rand.NewPCG(1, 1)), rows*cols, 0.02), rows, cols
}

func BenchmarkQuantizeChannel(b *testing.B) {
	x, rows, cols := benchMatrix(b)
	cpuLoop(b, int64(4*len(x)), func() {
		if _, _, err := QuantizeChannel(x, rows, cols); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkQuantizeBlock32(b *testing.B) {
	x, rows, cols := benchMatrix(b)
	cpuLoop(b, int64(4*len(x)), func() {
		if _, _, err := QuantizeBlock32(x, rows, cols); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkDequantizeChannel(b *testing.B) {
	x, rows, cols := benchMatrix(b)
	q, s, _ := QuantizeChannel(x, rows, cols)
	cpuLoop(b, int64(len(q)), func() {
		if _, err := DequantizeChannel(q, s, rows, cols); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkDequantizeBlock32(b *testing.B) {
	x, rows, cols := benchMatrix(b)
	q, s, _ := QuantizeBlock32(x, rows, cols)
	cpuLoop(b, int64(len(q)), func() {
		if _, err := DequantizeBlock32(q, s, rows, cols); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkDecodeQ8_0(b *testing.B) {
	x, rows, cols := benchMatrix(b)
	q, s, _ := QuantizeBlock32(x, rows, cols)
	raw, _ := EncodeQ8_0(q, s, rows, cols)
	cpuLoop(b, int64(len(raw)), func() {
		if _, _, err := DecodeQ8_0(raw, rows, cols); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkF32ToF16(b *testing.B) {
	x := randRow(rand.New(rand.NewPCG(1, 1)), 1<<16, 10)
	var sink uint16
	cpuLoop(b, int64(4*len(x)), func() {
		for _, v := range x {
			sink ^= F32ToF16(v)
		}
	})
	_ = sink
}

func BenchmarkDecodeBF16LE(b *testing.B) {
	raw := make([]byte, 2<<16)
	for i := range raw {
		raw[i] = byte(i * 7)
	}
	dst := make([]float32, 1<<16)
	cpuLoop(b, int64(len(raw)), func() { DecodeBF16LE(dst, raw) })
}

// q8 is C's roundf followed by the ±127 clamp, for every float32 in range.
func TestQ8RoundingMatchesRoundf(t *testing.T) {
	check := func(v float32) {
		want := int8(math.Max(-127, math.Min(127, math.Round(float64(v)))))
		if got := q8(v); got != want {
			t.Fatalf("q8(%v) = %d, want %d", v, got, want)
		}
	}
	for _, v := range []float32{0, 0.5, -0.5, 1.5, -1.5, 2.5, 126.5, -126.5, 127.49, 127.5, 200, -1e30, 0.49999997, -0.49999997, 1e-45} {
		check(v)
	}
	rng := rand.New(rand.NewPCG(4, 4))
	for i := 0; i < 100000; i++ {
		v := float32(rng.Float64()*260 - 130)
		check(v)
		check(float32(math.Round(float64(v))) + 0.5)
		check(math.Nextafter32(float32(math.Round(float64(v)))+0.5, 0))
	}
	require.Equal(t, int8(0), q8(float32(math.NaN())))
}
