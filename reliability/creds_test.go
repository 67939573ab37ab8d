package reliability_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// operatorSetup is a decentralized-auth (JWT) setup for a test server: an
// operator, one account with JetStream, and creds files for a user of that
// account and for a user of an account the server does not know.
type operatorSetup struct {
	conf      string // server config lines
	goodCreds string // path of a valid .creds file (0600)
	badCreds  string // path of a .creds file of an unknown account
	secrets   []string
}

func newOperatorSetup(t *testing.T, dir string) operatorSetup {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	op, err := nkeys.CreateOperator()
	must(err)
	opPub, _ := op.PublicKey()
	oc := jwt.NewOperatorClaims(opPub)
	oc.Name = "jetworker-test"
	opJWT, err := oc.Encode(op)
	must(err)

	account := func(signer nkeys.KeyPair, jetStream bool) (nkeys.KeyPair, string, string) {
		kp, err := nkeys.CreateAccount()
		must(err)
		pub, _ := kp.PublicKey()
		ac := jwt.NewAccountClaims(pub)
		ac.Name = "app"
		if jetStream {
			ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
		}
		j, err := ac.Encode(signer)
		must(err)
		return kp, pub, j
	}
	acc, accPub, accJWT := account(op, true)
	_, sysPub, sysJWT := account(op, false) // the system account JetStream needs
	rogueOp, err := nkeys.CreateOperator()
	must(err)
	rogue, _, _ := account(rogueOp, true)

	creds := func(name string, signer nkeys.KeyPair) (string, string) {
		u, err := nkeys.CreateUser()
		must(err)
		pub, _ := u.PublicKey()
		uc := jwt.NewUserClaims(pub)
		uc.Name = name
		j, err := uc.Encode(signer)
		must(err)
		seed, _ := u.Seed()
		b, err := jwt.FormatUserConfig(j, seed)
		must(err)
		path := filepath.Join(dir, name+".creds")
		must(os.WriteFile(path, b, 0o600))
		return path, string(seed)
	}
	good, goodSeed := creds("good", acc)
	bad, badSeed := creds("bad", rogue)
	return operatorSetup{
		conf: fmt.Sprintf("operator: %q\nsystem_account: %s\nresolver: MEMORY\nresolver_preload: {\n %s: %q\n %s: %q\n}\n",
			opJWT, sysPub, accPub, accJWT, sysPub, sysJWT),
		goodCreds: good,
		badCreds:  bad,
		secrets:   []string{goodSeed, badSeed},
	}
}
