package bundle

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// SignatureFile holds the detached Ed25519 signature of manifest.json: the
// standard base64 encoding of the 64 signature bytes, then a newline. The
// signature covers the exact bytes of manifest.json.
const SignatureFile = ManifestFile + ".sig"

// ErrSignature is wrapped by every signature failure (missing, malformed or
// not matching the key).
var ErrSignature = errors.New("bundle: manifest signature invalid")

// RFC 8410 DER prefixes of an Ed25519 PKCS#8 private key (followed by the
// 32-byte seed) and SubjectPublicKeyInfo (followed by the 32-byte key). The
// encodings are fixed, so the wasm loader needs no crypto/x509.
var (
	pkcs8Prefix = []byte{0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20}
	spkiPrefix  = []byte{0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00}
)

// GenerateKey makes a signing key: the private key as a PEM "PRIVATE KEY"
// block (PKCS#8, RFC 8410 — the same file `openssl genpkey -algorithm
// ed25519` writes) and the public key in FormatPublicKey's form.
func GenerateKey(rand io.Reader) (privatePEM []byte, public string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return nil, "", err
	}
	der := append(append([]byte(nil), pkcs8Prefix...), priv.Seed()...)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), FormatPublicKey(pub), nil
}

// ParsePrivateKey reads a PEM "PRIVATE KEY" block holding an Ed25519 PKCS#8 key.
func ParsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, errors.New("bundle: signing key: not a PEM \"PRIVATE KEY\" block (make one with `openssl genpkey -algorithm ed25519` or scripts/convert -gen-key)")
	}
	if len(b.Bytes) != len(pkcs8Prefix)+ed25519.SeedSize || !bytes.HasPrefix(b.Bytes, pkcs8Prefix) {
		return nil, errors.New("bundle: signing key: not an Ed25519 PKCS#8 key")
	}
	return ed25519.NewKeyFromSeed(b.Bytes[len(pkcs8Prefix):]), nil
}

// LoadPrivateKey reads ParsePrivateKey's format from a file.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bundle: signing key: %w", err)
	}
	k, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// FormatPublicKey is the standard base64 encoding of the 32 key bytes, the
// form a page is configured with.
func FormatPublicKey(pub ed25519.PublicKey) string { return base64.StdEncoding.EncodeToString(pub) }

// ParsePublicKey accepts FormatPublicKey's base64 form or a PEM "PUBLIC KEY"
// block (RFC 8410 SubjectPublicKeyInfo, as `openssl pkey -pubout` writes).
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "-----BEGIN") {
		b, _ := pem.Decode([]byte(s))
		if b == nil || b.Type != "PUBLIC KEY" || len(b.Bytes) != len(spkiPrefix)+ed25519.PublicKeySize || !bytes.HasPrefix(b.Bytes, spkiPrefix) {
			return nil, errors.New("bundle: public key: not an Ed25519 PEM \"PUBLIC KEY\" block")
		}
		return ed25519.PublicKey(b.Bytes[len(spkiPrefix):]), nil
	}
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(k) != ed25519.PublicKeySize {
		return nil, errors.New("bundle: public key: want the base64 encoding of 32 Ed25519 key bytes")
	}
	return ed25519.PublicKey(k), nil
}

// Sign returns the content of SignatureFile for these manifest bytes.
func Sign(priv ed25519.PrivateKey, manifest []byte) []byte {
	sig := ed25519.Sign(priv, manifest)
	return []byte(base64.StdEncoding.EncodeToString(sig) + "\n")
}

// VerifySignature checks SignatureFile content against the manifest bytes.
func VerifySignature(pub ed25519.PublicKey, manifest, sigFile []byte) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: public key has %d bytes, want %d", ErrSignature, len(pub), ed25519.PublicKeySize)
	}
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(sigFile)))
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: %s is not the base64 encoding of a 64-byte signature", ErrSignature, SignatureFile)
	}
	if !ed25519.Verify(pub, manifest, sig) {
		return fmt.Errorf("%w: %s does not match %s for this key", ErrSignature, SignatureFile, ManifestFile)
	}
	return nil
}

// SignWith makes Commit write SignatureFile beside manifest.json, so the
// signed bundle appears at its destination in one step.
func (w *Writer) SignWith(priv ed25519.PrivateKey) { w.signKey = priv }

// SignDir signs the manifest of an existing bundle directory in place.
func SignDir(dir string, priv ed25519.PrivateKey) error {
	data, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	return writeFileSync(filepath.Join(dir, SignatureFile), Sign(priv, data))
}

// VerifySignature checks the bundle's SignatureFile against its manifest.
func (b *Bundle) VerifySignature(pub ed25519.PublicKey) error {
	data, err := os.ReadFile(filepath.Join(b.Dir, ManifestFile))
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	sig, err := os.ReadFile(filepath.Join(b.Dir, SignatureFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: the bundle is not signed (no %s)", ErrSignature, SignatureFile)
		}
		return fmt.Errorf("bundle: %w", err)
	}
	return VerifySignature(pub, data, sig)
}
