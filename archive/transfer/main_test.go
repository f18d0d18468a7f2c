package transfer_test

import (
	"os"
	"testing"

	"github.com/statepack/statepack/internal/miniotest"
)

func TestMain(m *testing.M) { os.Exit(miniotest.Main(m)) }
