package remote

import (
	"os"

	"github.com/statepack/statepack/remote/s3"
)

// S3ConfigFromEnv reads the AWS environment variables users already have:
// AWS_ENDPOINT_URL_S3 (else AWS_ENDPOINT_URL), AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION (else
// AWS_DEFAULT_REGION), AWS_PROFILE and AWS_CA_BUNDLE.
// AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE are honoured when the
// credentials file is read.
//
// Server-side encryption comes from statepack's own variables, named
// after the AWS CLI's options since no AWS tool reads such variables:
// STATEPACK_S3_SSE (--sse: AES256 or aws:kms; or SSE-C for --sse-c),
// STATEPACK_S3_SSE_KMS_KEY_ID (--sse-kms-key-id), and the SSE-C key
// (--sse-c-key) in STATEPACK_S3_SSE_C_KEY (base64) or
// STATEPACK_S3_SSE_C_KEY_FILE (a file). They are checked when the
// backend is made (s3.New), which reports a wrong combination in one
// line.
func S3ConfigFromEnv() s3.Config {
	return s3.Config{
		Endpoint:        firstEnv("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
		Region:          firstEnv("AWS_REGION", "AWS_DEFAULT_REGION"),
		AccessKeyID:     os.Getenv("AWS_ACCESS_KEY_ID"),
		SecretAccessKey: os.Getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken:    os.Getenv("AWS_SESSION_TOKEN"),
		Profile:         os.Getenv("AWS_PROFILE"),
		CABundle:        os.Getenv("AWS_CA_BUNDLE"),
		SSE: s3.SSE{
			Mode:            os.Getenv(s3.EnvSSE),
			KMSKeyID:        os.Getenv(s3.EnvSSEKMSKeyID),
			CustomerKey:     os.Getenv(s3.EnvSSECustomerKey),
			CustomerKeyFile: os.Getenv(s3.EnvSSECustomerKeyFile),
		},
	}
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}
