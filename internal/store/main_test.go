package store

import (
	"os"
	"testing"

	"github.com/greypit/greypit/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopShared() // the cluster the contract suite shares
	os.Exit(code)
}
