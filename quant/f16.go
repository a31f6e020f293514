package quant

import (
	"encoding/binary"
	"math"
)

// F32ToF16 converts f to IEEE 754 binary16 bits, rounding to nearest even.
// Values beyond the f16 range become ±Inf, values below half the smallest
// subnormal become ±0; NaN stays NaN (quiet, payload truncated).
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant == 0 {
			return sign | 0x7c00
		}
		return sign | 0x7e00 | uint16(mant>>13)
	}
	e := exp - 127 + 15 // f16 biased exponent
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// f16 subnormal: value = m * 2^-24 with m = full >> shift.
		shift := uint(126 - exp)
		if shift > 24 {
			return sign
		}
		full := mant | 0x800000
		m := full >> shift
		rem := full & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || rem == half && m&1 == 1 {
			m++ // may carry into the smallest normal, which is correct
		}
		return sign | uint16(m)
	}
	h := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || rem == 0x1000 && h&1 == 1 {
		h++ // a carry into the exponent is correct, up to Inf
	}
	return sign | uint16(h)
}

// F16ToF32 converts IEEE 754 binary16 bits to float32 (exactly).
func F16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0:
		v := float32(mant) * (1.0 / (1 << 24)) // exact
		if sign != 0 {
			v = -v
		}
		return v
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// BF16ToF32 widens bfloat16 bits to float32 (exactly).
func BF16ToF32(b uint16) float32 { return math.Float32frombits(uint32(b) << 16) }

// F32ToBF16 converts f to bfloat16 bits, rounding to nearest even; NaN stays
// a quiet NaN.
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

// DecodeF32LE decodes len(dst) little-endian float32 values from src.
func DecodeF32LE(dst []float32, src []byte) {
	_ = src[:4*len(dst)]
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

// DecodeF16LE widens len(dst) little-endian f16 values from src.
func DecodeF16LE(dst []float32, src []byte) {
	_ = src[:2*len(dst)]
	for i := range dst {
		dst[i] = F16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
	}
}

// DecodeBF16LE widens len(dst) little-endian bf16 values from src.
func DecodeBF16LE(dst []float32, src []byte) {
	_ = src[:2*len(dst)]
	for i := range dst {
		dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16)
	}
}

// AppendF32LE appends x as little-endian float32 bytes.
func AppendF32LE(dst []byte, x []float32) []byte {
	for _, v := range x {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(v))
	}
	return dst
}

// AppendU16LE appends 16-bit values (f16 or bf16 bits) as little-endian bytes.
func AppendU16LE(dst []byte, h []uint16) []byte {
	for _, v := range h {
		dst = binary.LittleEndian.AppendUint16(dst, v)
	}
	return dst
}
