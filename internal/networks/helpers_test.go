package networks

import (
	"bytes"
	"encoding/json"
	"io"
)

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
