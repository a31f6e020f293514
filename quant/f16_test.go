package quant

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestF32ToF16KnownBits(t *testing.T) {
	cases := []struct {
		f    float32
		want uint16
	}{
		{0, 0x0000},
		{float32(math.Copysign(0, -1)), 0x8000},
		{1, 0x3c00},
		{-2, 0xc000},
		{0.5, 0x3800},
		{65504, 0x7bff},                  // largest finite
		{65519.99, 0x7bff},               // below the halfway point to 65536
		{65520, 0x7c00},                  // halfway: rounds to even, i.e. Inf
		{1e10, 0x7c00},                   // overflow
		{-1e10, 0xfc00},                  //
		{0.1, 0x2e66},                    //
		{1.0 / 3, 0x3555},                //
		{6.103515625e-05, 0x0400},        // smallest normal 2^-14
		{5.960464477539063e-08, 0x0001},  // smallest subnormal 2^-24
		{2.9802322387695312e-08, 0x0000}, // 2^-25: tie, rounds to even (0)
		{2.98023259e-08, 0x0001},         // just above 2^-25
		{8.940696716308594e-08, 0x0002},  // 1.5 * 2^-24: tie, rounds to even (2)
		{6.097555160522461e-05, 0x03ff},  // largest subnormal
		{1.401298464324817e-45, 0x0000},  // f32 denormal
		{float32(math.Inf(1)), 0x7c00},
		{float32(math.Inf(-1)), 0xfc00},
		{1.0009765625, 0x3c01},  // 1 + 2^-10
		{1.00048828125, 0x3c00}, // 1 + 2^-11: tie, even
		{1.00146484375, 0x3c02}, // 1 + 3·2^-11: tie, even (up)
		{2048, 0x6800},          //
		{-0.0001, 0x868e},       //
	}
	for _, c := range cases {
		require.Equalf(t, c.want, F32ToF16(c.f), "F32ToF16(%g)", c.f)
	}
	nan := F32ToF16(float32(math.NaN()))
	require.Equal(t, uint16(0x7c00), nan&0x7c00, "NaN keeps an all-ones exponent")
	require.NotZero(t, nan&0x3ff, "NaN keeps a non-zero mantissa")
	require.NotZero(t, F32ToF16(math.Float32frombits(0x7f800001))&0x3ff, "signalling NaN with a low payload stays NaN")
}

func TestF16ToF32KnownBits(t *testing.T) {
	require.Equal(t, float32(1), F16ToF32(0x3c00))
	require.Equal(t, float32(-2), F16ToF32(0xc000))
	require.Equal(t, float32(65504), F16ToF32(0x7bff))
	require.Equal(t, float32(math.Ldexp(1, -24)), F16ToF32(0x0001))
	require.Equal(t, float32(math.Ldexp(1023, -24)), F16ToF32(0x03ff))
	require.Equal(t, float32(math.Ldexp(1, -14)), F16ToF32(0x0400))
	require.Equal(t, uint32(0x80000000), math.Float32bits(F16ToF32(0x8000)))
	require.True(t, math.IsInf(float64(F16ToF32(0x7c00)), 1))
	require.True(t, math.IsInf(float64(F16ToF32(0xfc00)), -1))
	require.True(t, math.IsNaN(float64(F16ToF32(0x7e00))))
	require.True(t, math.IsNaN(float64(F16ToF32(0xfc01))))
}

// Every finite f16 survives f16→f32→f16 unchanged, and the widening agrees
// with math.Ldexp.
func TestF16RoundTripExhaustive(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := F16ToF32(h)
		if h&0x7c00 == 0x7c00 && h&0x3ff != 0 {
			require.True(t, math.IsNaN(float64(f)))
			continue
		}
		if back := F32ToF16(f); back != h {
			t.Fatalf("round trip of %#04x gives %#04x", h, back)
		}
		if want := refF16ToF64(h); want != float64(f) {
			t.Fatalf("value of %#04x is %g, want %g", h, f, want)
		}
	}
}

func refF16ToF64(h uint16) float64 {
	e := int(h>>10) & 0x1f
	m := float64(h & 0x3ff)
	var v float64
	switch e {
	case 0:
		v = math.Ldexp(m, -24)
	case 0x1f:
		v = math.Inf(1)
	default:
		v = math.Ldexp(1024+m, e-25)
	}
	if h&0x8000 != 0 {
		v = -v
	}
	return v
}

// refF16 is an independent f32→f16: the nearest representable value found by
// binary search over all finite non-negative f16 values, ties to the even
// bit pattern; beyond 65504 the IEEE rule (round as if the exponent were
// unbounded) sends x ≥ 65520 to Inf.
type refF16 struct {
	vals []float64
	bits []uint16
}

func newRefF16() *refF16 {
	r := &refF16{}
	for h := uint16(0); h < 0x7c00; h++ {
		r.vals = append(r.vals, refF16ToF64(h))
		r.bits = append(r.bits, h)
	}
	return r
}

func (r *refF16) convert(f float32) uint16 {
	x := float64(f)
	var sign uint16
	if math.Signbit(x) {
		sign, x = 0x8000, -x
	}
	if x >= 65520 {
		return sign | 0x7c00
	}
	i := sort.SearchFloat64s(r.vals, x)
	if i < len(r.vals) && r.vals[i] == x {
		return sign | r.bits[i]
	}
	if i == len(r.vals) { // between 65504 and 65520
		return sign | 0x7bff
	}
	lo, hi := i-1, i
	dl, dh := x-r.vals[lo], r.vals[hi]-x
	switch {
	case dl < dh:
		return sign | r.bits[lo]
	case dh < dl:
		return sign | r.bits[hi]
	case r.bits[lo]&1 == 0:
		return sign | r.bits[lo]
	}
	return sign | r.bits[hi]
}

func TestF32ToF16MatchesReference(t *testing.T) {
	ref := newRefF16()
	rng := rand.New(rand.NewPCG(1, 2))
	check := func(f float32) {
		if want, got := ref.convert(f), F32ToF16(f); got != want {
			t.Fatalf("F32ToF16(%g) (bits %#08x) = %#04x, want %#04x", f, math.Float32bits(f), got, want)
		}
	}
	// Random bit patterns concentrated around the f16 range, and the exact
	// midpoints between neighbouring f16 values (the tie cases).
	for i := 0; i < 200000; i++ {
		b := rng.Uint32()
		exp := uint32(rng.IntN(50) + 90) // 2^-37 .. 2^12+
		f := math.Float32frombits(b&0x807fffff | exp<<23)
		check(f)
	}
	for h := uint16(0); h < 0x7bff; h++ {
		mid := (refF16ToF64(h) + refF16ToF64(h+1)) / 2
		check(float32(mid))
		check(float32(-mid))
		check(math.Nextafter32(float32(mid), 0))
		check(math.Nextafter32(float32(mid), 1e9))
	}
}

func TestBF16(t *testing.T) {
	require.Equal(t, float32(1), BF16ToF32(0x3f80))
	require.Equal(t, float32(-2), BF16ToF32(0xc000))
	require.True(t, math.IsInf(float64(BF16ToF32(0x7f80)), 1))
	require.True(t, math.IsNaN(float64(BF16ToF32(0x7fc0))))
	require.Equal(t, uint16(0x3f80), F32ToBF16(1))
	require.Equal(t, uint16(0x3f80), F32ToBF16(math.Float32frombits(0x3f808000))) // tie → even
	require.Equal(t, uint16(0x3f82), F32ToBF16(math.Float32frombits(0x3f818000))) // tie → even (up)
	require.Equal(t, uint16(0x3f81), F32ToBF16(math.Float32frombits(0x3f808001)))
	require.Equal(t, uint16(0x7f80), F32ToBF16(math.MaxFloat32)) // rounds up to Inf
	require.True(t, math.IsNaN(float64(BF16ToF32(F32ToBF16(float32(math.NaN()))))))
	require.True(t, math.IsNaN(float64(BF16ToF32(F32ToBF16(math.Float32frombits(0x7f800001))))))
	for i := 0; i < 1<<16; i++ {
		if i&0x7f80 == 0x7f80 && i&0x7f != 0 {
			continue
		}
		if back := F32ToBF16(BF16ToF32(uint16(i))); back != uint16(i) {
			t.Fatalf("bf16 round trip of %#04x gives %#04x", i, back)
		}
	}
}

func TestDecodeLE(t *testing.T) {
	x := []float32{1, -2.5, 65504, 0}
	b := AppendF32LE(nil, x)
	got := make([]float32, len(x))
	DecodeF32LE(got, b)
	require.Equal(t, x, got)

	h := []uint16{0x3c00, 0xc100, 0x7bff, 0x0001}
	DecodeF16LE(got, AppendU16LE(nil, h))
	require.Equal(t, []float32{1, -2.5, 65504, float32(math.Ldexp(1, -24))}, got)

	DecodeBF16LE(got, AppendU16LE(nil, []uint16{0x3f80, 0xc020, 0, 0x4000}))
	require.Equal(t, []float32{1, -2.5, 0, 2}, got)

	DecodeF32LE(nil, nil)
	require.Panics(t, func() { DecodeF32LE(got, b[:15]) }, "short input must not be read past")
}
