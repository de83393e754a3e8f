package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"sspemu/audit"
)

func newAuditCmd(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Inspect the audit and transaction logs",
	}
	verify := &cobra.Command{
		Use:   "verify FILE...",
		Short: "Check a hash chain (the files of one log, in order); name the first broken record",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, files []string) error {
			rep, err := audit.Verify(files...)
			if err != nil {
				return err
			}
			if rep.TornTail != nil {
				fmt.Fprintf(stdout, "note: %s (a crash cut the last line short; not damage)\n", rep.TornTail)
			}
			if rep.First != nil {
				fmt.Fprintf(stdout, "BROKEN: %s\n", rep.First)
				return errReported
			}
			fmt.Fprintf(stdout, "intact: %d records in %d file(s), last seq %d\n", rep.Records, rep.Files, rep.LastSeq)
			return nil
		},
	}
	cmd.AddCommand(verify)
	return cmd
}
