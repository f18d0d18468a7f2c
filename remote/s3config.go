package remote

import (
	"os"

	"github.com/statepack/statepack/remote/s3"
)

// S3ConfigFromEnv reads the AWS environment variables users already have:
// AWS_ENDPOINT_URL_S3 (else AWS_ENDPOINT_URL), AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION (else
// AWS_DEFAULT_REGION) and AWS_PROFILE. AWS_SHARED_CREDENTIALS_FILE and
// AWS_CONFIG_FILE are honoured when the credentials file is read.
func S3ConfigFromEnv() s3.Config {
	return s3.Config{
		Endpoint:        firstEnv("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
		Region:          firstEnv("AWS_REGION", "AWS_DEFAULT_REGION"),
		AccessKeyID:     os.Getenv("AWS_ACCESS_KEY_ID"),
		SecretAccessKey: os.Getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken:    os.Getenv("AWS_SESSION_TOKEN"),
		Profile:         os.Getenv("AWS_PROFILE"),
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
