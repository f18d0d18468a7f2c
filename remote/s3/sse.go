package s3

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"
)

// Server-side encryption modes, spelled as S3's
// x-amz-server-side-encryption header and the AWS CLI's --sse option
// spell them; SSEC stands for the CLI's separate --sse-c option, which has
// one algorithm only (AES256), so that one variable picks the mode.
const (
	// SSENone sends no encryption headers: the bucket's default
	// encryption applies (on AWS, SSE-S3 for every new object).
	SSENone = ""
	// SSES3 asks S3 to encrypt every object with a key it manages.
	SSES3 = "AES256"
	// SSEKMS asks S3 to encrypt every object under a KMS key
	// (SSE.KMSKeyID, else the account's default key for S3).
	SSEKMS = "aws:kms"
	// SSEC gives S3 the key (SSE.CustomerKey) with every request; S3
	// encrypts with it and forgets it, so every read needs it too.
	SSEC = "SSE-C"
)

// The environment variables remote.S3ConfigFromEnv reads SSE from, named
// in messages so that a user knows what to change. They follow the AWS
// CLI's options (--sse, --sse-kms-key-id, --sse-c, --sse-c-key) with
// statepack's prefix: the AWS tools read no such variables of their own.
const (
	EnvSSE                = "STATEPACK_S3_SSE"
	EnvSSEKMSKeyID        = "STATEPACK_S3_SSE_KMS_KEY_ID"
	EnvSSECustomerKey     = "STATEPACK_S3_SSE_C_KEY"
	EnvSSECustomerKeyFile = "STATEPACK_S3_SSE_C_KEY_FILE"
)

// ErrCustomerKey: an object cannot be read because it was written with
// a customer key (SSE-C) and none was given, or because a key was given
// and the object was written without one. The message says which, and
// what to set.
var ErrCustomerKey = errors.New("object needs the SSE-C customer key it was written with")

// SSE is the server-side encryption S3 applies to every object the
// backend writes, for users whose policy requires it. It protects the
// objects at rest in S3's storage, not from whoever may read the bucket:
// S3 decrypts for every reader with the right permissions (and, for
// SSE-C, the key). statepack's own encryption (statepack init --encrypt)
// is separate and protects against the bucket's readers too.
//
// Print it freely: String never shows the customer key.
type SSE struct {
	// Mode is SSENone, SSES3, SSEKMS or SSEC, in any case; also
	// accepted are the names AWS's documentation uses, "SSE-S3" and
	// "SSE-KMS", and "none" for SSENone.
	Mode string
	// KMSKeyID is the KMS key of SSEKMS (an id, an ARN or an alias); empty
	// means the account's default key for S3 (aws/s3), or the server's
	// default key on MinIO. Only with SSEKMS.
	KMSKeyID string
	// CustomerKey is the SSE-C key: 32 bytes, base64-encoded, as S3's
	// x-amz-server-side-encryption-customer-key header carries it. Only
	// with SSEC; exactly one of CustomerKey and CustomerKeyFile.
	CustomerKey string
	// CustomerKeyFile names a file holding the SSE-C key: 32 raw bytes
	// (openssl rand 32), or their base64 (openssl rand -base64 32). A
	// file keeps the key out of the environment of every process.
	CustomerKeyFile string
}

// String describes the settings without the customer key.
func (e SSE) String() string {
	return fmt.Sprintf("{Mode:%q KMSKeyID:%q CustomerKey:%s CustomerKeyFile:%q}",
		e.Mode, e.KMSKeyID, redacted(e.CustomerKey), e.CustomerKeyFile)
}

// GoString keeps %#v from printing the customer key.
func (e SSE) GoString() string { return e.String() }

// mode is Mode in its canonical spelling, or an error naming the choices.
func (e SSE) mode() (string, error) {
	switch strings.ToUpper(strings.TrimSpace(e.Mode)) {
	case "", "NONE":
		return SSENone, nil
	case "AES256", "SSE-S3":
		return SSES3, nil
	case "AWS:KMS", "SSE-KMS":
		return SSEKMS, nil
	case "SSE-C":
		return SSEC, nil
	}
	setting := fmt.Sprintf("%s=%q", EnvSSE, e.Mode)
	if len(e.Mode) > 16 {
		setting = EnvSSE // it may be a key set in the wrong variable: never echo it
	}
	return "", fmt.Errorf("%s is not a server-side encryption mode: want AES256 (SSE-S3), aws:kms (SSE-KMS) or SSE-C", setting)
}

// serverSide checks the settings and returns what minio-go sends for
// them: nil for SSENone. Every error is one line that names the
// variables to change, and never the key.
func (e SSE) serverSide() (encrypt.ServerSide, error) {
	mode, err := e.mode()
	if err != nil {
		return nil, err
	}
	if e.KMSKeyID != "" && mode != SSEKMS {
		return nil, fmt.Errorf("%s is set but %s is not aws:kms: set %s=aws:kms or unset the key id", EnvSSEKMSKeyID, EnvSSE, EnvSSE)
	}
	if mode != SSEC {
		for _, v := range []struct{ name, value string }{{EnvSSECustomerKey, e.CustomerKey}, {EnvSSECustomerKeyFile, e.CustomerKeyFile}} {
			if v.value != "" {
				return nil, fmt.Errorf("%s is set but %s is not SSE-C: set %s=SSE-C or unset the key", v.name, EnvSSE, EnvSSE)
			}
		}
	}
	switch mode {
	case SSES3:
		return encrypt.NewSSE(), nil
	case SSEKMS:
		return encrypt.NewSSEKMS(e.KMSKeyID, nil)
	case SSEC:
		key, err := e.customerKey()
		if err != nil {
			return nil, err
		}
		return encrypt.NewSSEC(key)
	}
	return nil, nil
}

// customerKey reads and decodes the SSE-C key.
func (e SSE) customerKey() ([]byte, error) {
	switch {
	case e.CustomerKey != "" && e.CustomerKeyFile != "":
		return nil, fmt.Errorf("both %s and %s are set: give the SSE-C key in one of them", EnvSSECustomerKey, EnvSSECustomerKeyFile)
	case e.CustomerKey != "":
		noteSecrets(e.CustomerKey)
		key, err := decodeKey([]byte(e.CustomerKey))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvSSECustomerKey, err)
		}
		return key, nil
	case e.CustomerKeyFile != "":
		data, err := os.ReadFile(e.CustomerKeyFile)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return nil, fmt.Errorf("%s: read %s: %w", EnvSSECustomerKeyFile, e.CustomerKeyFile, err)
		}
		if len(data) == 32 {
			noteSecrets(base64.StdEncoding.EncodeToString(data))
			return data, nil // raw bytes
		}
		noteSecrets(string(bytes.TrimSpace(data)))
		key, err := decodeKey(data)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", EnvSSECustomerKeyFile, e.CustomerKeyFile, err)
		}
		return key, nil
	}
	return nil, fmt.Errorf("%s=SSE-C needs the key: set %s (base64 of 32 bytes) or %s (a file holding it)", EnvSSE, EnvSSECustomerKey, EnvSSECustomerKeyFile)
}

// decodeKey decodes a base64 SSE-C key of 32 bytes. Its errors never
// quote the input.
func decodeKey(b64 []byte) ([]byte, error) {
	b64 = bytes.TrimSpace(b64)
	key := make([]byte, base64.StdEncoding.DecodedLen(len(b64)))
	n, err := base64.StdEncoding.Decode(key, b64)
	if err != nil || n != 32 {
		return nil, errors.New("the SSE-C key must be 32 bytes in base64 (44 characters, as `openssl rand -base64 32` prints it)")
	}
	noteSecrets(base64.StdEncoding.EncodeToString(key[:n]))
	return key[:n], nil
}

// readOptions are the options of a GET or HEAD: with SSE-C, the key the
// object was written with; other modes need nothing to read.
func (b *Backend) readOptions() minio.GetObjectOptions {
	if b.sse != nil && b.sse.Type() == encrypt.SSEC {
		return minio.GetObjectOptions{ServerSideEncryption: b.sse}
	}
	return minio.GetObjectOptions{}
}

// Messages for S3's answers that come from server-side encryption.
const (
	msgNeedsKey = "the bucket's objects are encrypted with a customer key (SSE-C): set " +
		EnvSSE + "=SSE-C and the key in " + EnvSSECustomerKey + " or " + EnvSSECustomerKeyFile
	msgNotSSEC = "the object is not encrypted with a customer key (SSE-C), though " + EnvSSE +
		"=SSE-C is set: it was written without one; unset " + EnvSSE + " to read it"
	msgWrongKey = "if the credentials may read it, the SSE-C key (" + EnvSSECustomerKey + " or " +
		EnvSSECustomerKeyFile + ") is not the one the object was written with"
)

// sseExplain returns what an S3 answer to op means for server-side
// encryption, and the sentinel it matches, or "" when it has nothing to
// do with it. S3 answers HTTP 400 to a read of an SSE-C object without
// the key, and to a read with a key of an object written without one;
// 403 to a read with another key; and a KMS error to a write under a KMS
// key that does not exist or may not be used.
func (b *Backend) sseExplain(op string, err error) (string, error) {
	var er minio.ErrorResponse
	if !errors.As(err, &er) {
		return "", nil
	}
	ssec := b.sse != nil && b.sse.Type() == encrypt.SSEC
	read := op == "get" || op == "stat" || op == "read"
	encrypted := strings.Contains(er.Message, "stored using a form of Server Side Encryption")
	notApplicable := strings.Contains(er.Message, "encryption parameters are not applicable")
	switch {
	case read && er.StatusCode == 400 && !ssec && encrypted:
		return msgNeedsKey, ErrCustomerKey
	case read && er.StatusCode == 400 && ssec && (encrypted || notApplicable):
		return msgNotSSEC, ErrCustomerKey
	case read && er.StatusCode == 403 && ssec:
		return msgWrongKey, nil
	case op == "stat" && er.StatusCode == 400 && !ssec && strings.HasPrefix(er.Code, "400 "):
		// AWS answers a HEAD with a bare 400, without a code to tell why.
		return "if " + msgNeedsKey[len("the "):], nil
	case strings.HasPrefix(er.Code, "KMS.") || strings.HasPrefix(er.Code, "kms:"):
		return fmt.Sprintf("the KMS key of %s=aws:kms cannot be used: check %s (now %q) and the key's policy", EnvSSE, EnvSSEKMSKeyID, b.kmsKeyID), nil
	case er.Code == "NotImplemented" && b.sse != nil:
		return fmt.Sprintf("the server does not serve %s=%s", EnvSSE, b.sseMode), nil
	}
	return "", nil
}
