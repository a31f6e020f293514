package gguf

import (
	"fmt"
	"math"
)

func (f *File) lookup(key string) (any, error) {
	v, ok := f.Metadata[key]
	if !ok {
		return nil, fmt.Errorf("%s: metadata %q: %w", f.Name, key, ErrNotFound)
	}
	return v, nil
}

// Has reports whether the metadata key is present.
func (f *File) Has(key string) bool { _, ok := f.Metadata[key]; return ok }

// String returns a string metadata value.
func (f *File) String(key string) (string, error) {
	v, err := f.lookup(key)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", f.invalid("metadata %q has type %T, want string", key, v)
	}
	return s, nil
}

// Int returns an integer metadata value of any integer type (writers differ
// in the width and signedness they use for the same key).
func (f *File) Int(key string) (int64, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	switch x := v.(type) {
	case uint8:
		return int64(x), nil
	case int8:
		return int64(x), nil
	case uint16:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case int64:
		return x, nil
	case uint64:
		if x > math.MaxInt64 {
			return 0, f.invalid("metadata %q = %d is out of range", key, x)
		}
		return int64(x), nil
	}
	return 0, f.invalid("metadata %q has type %T, want an integer", key, v)
}

// Float returns a float (or integer) metadata value as float64.
func (f *File) Float(key string) (float64, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	switch x := v.(type) {
	case float32:
		return float64(x), nil
	case float64:
		return x, nil
	}
	n, err := f.Int(key)
	if err != nil {
		return 0, f.invalid("metadata %q has type %T, want a number", key, v)
	}
	return float64(n), nil
}

// Bool returns a bool metadata value.
func (f *File) Bool(key string) (bool, error) {
	v, err := f.lookup(key)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, f.invalid("metadata %q has type %T, want bool", key, v)
	}
	return b, nil
}

// ArrayLen returns the length of an array metadata value.
func (f *File) ArrayLen(key string) (int, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	switch x := v.(type) {
	case []string:
		return len(x), nil
	case []float32:
		return len(x), nil
	case []int32:
		return len(x), nil
	case []uint32:
		return len(x), nil
	case []uint8:
		return len(x), nil
	case []int8:
		return len(x), nil
	case []uint16:
		return len(x), nil
	case []int16:
		return len(x), nil
	case []uint64:
		return len(x), nil
	case []int64:
		return len(x), nil
	case []float64:
		return len(x), nil
	case []bool:
		return len(x), nil
	case []any:
		return len(x), nil
	}
	return 0, f.invalid("metadata %q has type %T, want an array", key, v)
}
