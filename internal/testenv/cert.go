package testenv

// WriteSelfSigned writes a fresh self-signed certificate for hostname (and
// localhost, 127.0.0.1, ::1) to certFile and its key to keyFile, for
// servers under test that need one.
func WriteSelfSigned(hostname, certFile, keyFile string) ([]byte, error) {
	return writeSelfSigned(hostname, certFile, keyFile)
}
