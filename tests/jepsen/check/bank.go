package check

import (
	"fmt"
	"sort"
	"strings"

	"github.com/meridiandb/meridian/tests/jepsen/history"
)

// CheckBank checks bank reads: every ok read sees every account with a
// non-nil, non-negative balance, no other key, and the initial total. With
// p.FinalRead, an ok read must have been invoked after every transfer
// completed.
func CheckBank(ops []history.Op, p history.BankParams, minOK int) (*Result, error) {
	if minOK <= 0 {
		minOK = 1
	}
	res := newResult("bank")
	if len(p.Accounts) == 0 {
		return nil, fmt.Errorf("check: bank: test.json lists no accounts")
	}
	accounts := map[string]bool{}
	for _, a := range p.Accounts {
		accounts[a] = true
	}
	var lastTransfer int64 = -1
	var lastRead *history.Op
	nok, nreads := 0, 0
	for i := range ops {
		op := &ops[i]
		if op.Workload != history.Bank {
			continue
		}
		switch op.F {
		case "transfer":
			var tr history.Transfer
			if err := decodeStrict(op.Value, &tr); err != nil {
				return nil, fmt.Errorf("check: bank transfer at index %d: %w", op.Inv, err)
			}
			end := op.Cmp
			if op.Type == history.Info {
				end = op.Inv // its effect may land any time; it was at least sent here
			}
			if end > lastTransfer {
				lastTransfer = end
			}
			if op.Type == history.OK {
				nok++
			}
		case "read":
			if op.Type != history.OK {
				continue
			}
			nok++
			nreads++
			if lastRead == nil || op.Inv > lastRead.Inv {
				lastRead = op
			}
			bal, nils, err := history.DecodeBalances(op.Value)
			if err != nil {
				return nil, fmt.Errorf("check: bank read at index %d: %w", op.Cmp, err)
			}
			bankRead(res, op, p, accounts, bal, nils)
		default:
			return nil, fmt.Errorf("check: bank op at index %d: unknown f %q (want transfer or read)", op.Inv, op.F)
		}
	}
	res.Notes = append(res.Notes, fmt.Sprintf("%d ok ops, %d ok reads", nok, nreads))
	if nreads == 0 || nok < minOK {
		res.unknown(fmt.Sprintf("too few operations: %d ok bank ops, %d ok reads", nok, nreads))
	}
	if p.FinalRead && (lastRead == nil || lastRead.Inv < lastTransfer) {
		res.add(Anomaly{Type: "missing-final-read", Explanation: fmt.Sprintf(
			"no ok read was invoked after the last transfer ended (index %d)", lastTransfer)})
	}
	return res, nil
}

func bankRead(res *Result, op *history.Op, p history.BankParams, accounts map[string]bool, bal map[string]int64, nils []string) {
	where := fmt.Sprintf("read completed at index %d (process %d): %s", op.Cmp, op.Process, op.Value)
	var sum int64
	var keys []string
	for k := range bal {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := bal[k]
		if !accounts[k] {
			res.add(Anomaly{Type: "unexpected-key", Key: k, Ops: []int64{op.Cmp}, Explanation: where + "\naccount " + k + " is not one of the test's accounts"})
			continue
		}
		sum += v
		if v < 0 {
			res.add(Anomaly{Type: "negative-value", Key: k, Ops: []int64{op.Cmp}, Explanation: fmt.Sprintf("%s\naccount %s has balance %d", where, k, v)})
		}
	}
	var missing []string
	for _, a := range p.Accounts {
		if _, ok := bal[a]; !ok {
			missing = append(missing, a)
		}
	}
	if len(missing) > 0 || len(nils) > 0 {
		res.add(Anomaly{Type: "nil-balance", Ops: []int64{op.Cmp}, Explanation: fmt.Sprintf("%s\naccounts without a balance: %s",
			where, strings.Join(append(missing, nils...), ", "))})
		return
	}
	if sum != p.Total {
		res.add(Anomaly{Type: "wrong-total", Ops: []int64{op.Cmp}, Explanation: fmt.Sprintf("%s\nbalances sum to %d, want the initial total %d", where, sum, p.Total)})
	}
}
