package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"sspemu/audit"
)

func newAuditCmd(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Inspect the audit and transaction logs",
	}
	verify := &cobra.Command{
		Use:   "verify FILE...|DIR",
		Short: "Check a hash chain and name the first broken record",
		Long: "Check the hash chain of one log given as its files in order (audit-000001.jsonl ...),\n" +
			"or of every log (audit, transactions and the Spine services journal) in an audit directory. Exit 0 when intact;\n" +
			"otherwise name the first edited, deleted, reordered or truncated record and exit 1.\n" +
			"A torn last line left by a crash is reported as a note, not as damage.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			chains := [][]string{args}
			if fi, err := os.Stat(args[0]); err == nil && fi.IsDir() && len(args) == 1 {
				chains = nil
				for _, name := range []string{audit.AuditChain, audit.TransactionChain, audit.SpineChain} {
					files, err := audit.ChainFiles(args[0], name)
					if err != nil {
						return err
					}
					if len(files) > 0 {
						chains = append(chains, files)
					}
				}
				if len(chains) == 0 {
					return fmt.Errorf("%s holds no audit-*.jsonl or transactions-*.jsonl files", args[0])
				}
			}
			broken := false
			for _, files := range chains {
				rep, err := audit.Verify(files...)
				if err != nil {
					return err
				}
				if rep.TornTail != nil {
					fmt.Fprintf(stdout, "note: %s (a crash cut the last line short; not damage)\n", rep.TornTail)
				}
				if rep.First != nil {
					fmt.Fprintf(stdout, "BROKEN: %s\n", rep.First)
					broken = true
					continue
				}
				fmt.Fprintf(stdout, "intact: %s: %d records in %d file(s), seq %d..%d\n",
					filepath.Base(files[0]), rep.Records, rep.Files, rep.FirstSeq, rep.LastSeq)
			}
			if broken {
				return errReported
			}
			return nil
		},
	}
	cmd.AddCommand(verify)
	return cmd
}
