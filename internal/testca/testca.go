// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

// Package testca makes a private certificate authority and a server
// certificate signed by it, for tests of TLS with a private CA.
package testca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a private certificate authority made for one test, with one server
// certificate for 127.0.0.1, localhost and the names given to New.
type CA struct {
	// CAFile, CertFile and KeyFile are PEM files in the test's directory:
	// the CA certificate, the server certificate and its key.
	CAFile, CertFile, KeyFile string
	// ServerCert is the server certificate, ready for a tls.Config.
	ServerCert tls.Certificate
	// Pool holds the CA certificate, for clients that trust it.
	Pool *x509.CertPool
}

// New creates a CA and a server certificate valid for an hour around now
// and writes them into dir.
func New(t testing.TB, dir string, dnsNames ...string) *CA {
	t.Helper()
	now := time.Now()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "modelarts_exporter test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER := create(t, caTmpl, caTmpl, caKey, caKey)
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key := newKey(t)
	der := create(t, &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "modelarts_exporter test server"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     append([]string{"localhost"}, dnsNames...),
	}, caCert, key, caKey)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	ca := &CA{
		CAFile:     writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER),
		CertFile:   writePEM(t, dir, "server.crt", "CERTIFICATE", der),
		KeyFile:    writePEM(t, dir, "server.key", "PRIVATE KEY", keyDER),
		ServerCert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		Pool:       x509.NewCertPool(),
	}
	ca.Pool.AddCert(caCert)
	return ca
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func create(t testing.TB, tmpl, parent *x509.Certificate, key, signer *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func writePEM(t testing.TB, dir, name, blockType string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
