package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"sspemu/certs"
)

func newCertsCmd(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Make and manage the development PKI",
	}
	var dir string
	var force bool
	var consumer string
	initCmd := &cobra.Command{
		Use:   "init",
		Short: "Write the dev PKI (CA, SSP, consumer and provider certificates, CRL) into --dir",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := certs.Init(dir, force, certs.Options{ConsumerFQDN: consumer}); err != nil {
				return err
			}
			for _, f := range certs.Files() {
				fmt.Fprintf(stdout, "%s/%s\n", dir, f)
			}
			return nil
		},
	}
	initCmd.Flags().StringVar(&dir, "dir", ".sspemu/pki", "where to write the PKI")
	initCmd.Flags().BoolVar(&force, "force", false, "overwrite existing files")
	initCmd.Flags().StringVar(&consumer, "consumer-fqdn", certs.DefaultConsumerFQDN, "the default consumer certificate's host name")

	var name string
	var client, server bool
	issueCmd := &cobra.Command{
		Use:   "issue",
		Short: "Issue one more certificate signed by the dev CA: --name FQDN --client|--server",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if client == server {
				return errors.New("say --client or --server (exactly one)")
			}
			if err := needCA(dir); err != nil {
				return err
			}
			opt := certs.IssueOptions{Purpose: certs.Client, Force: force}
			if server {
				opt.Purpose = certs.Server
			}
			c, k, err := certs.Issue(dir, name, opt)
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, c)
			fmt.Fprintln(stdout, k)
			return nil
		},
	}
	issueCmd.Flags().StringVar(&dir, "dir", ".sspemu/pki", "the PKI directory holding ca.pem and ca-key.pem")
	issueCmd.Flags().StringVar(&name, "name", "", "the host name (or IP address) the certificate is for")
	issueCmd.Flags().BoolVar(&client, "client", false, "a client (consumer) certificate")
	issueCmd.Flags().BoolVar(&server, "server", false, "a server (provider) certificate")
	issueCmd.Flags().BoolVar(&force, "force", false, "overwrite existing files")
	_ = issueCmd.MarkFlagRequired("name")

	var certFile string
	revokeCmd := &cobra.Command{
		Use:   "revoke",
		Short: "Add a certificate to the dev CA's CRL; a running SSP refuses it from its next handshake",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := needCA(dir); err != nil {
				return err
			}
			if err := certs.Revoke(dir, certFile); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "revoked %s in %s/%s\n", certFile, dir, certs.CRLFile)
			return nil
		},
	}
	revokeCmd.Flags().StringVar(&dir, "dir", ".sspemu/pki", "the PKI directory")
	revokeCmd.Flags().StringVar(&certFile, "cert", "", "the certificate (PEM) to revoke")
	_ = revokeCmd.MarkFlagRequired("cert")

	cmd.AddCommand(initCmd, issueCmd, revokeCmd)
	return cmd
}

// needCA says what to do when dir holds no dev CA, instead of the bare
// "no such file" of the first file a command would open.
func needCA(dir string) error {
	for _, f := range []string{certs.CAFile, certs.CAKeyFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("no dev CA in %s (%s is missing): run `sspemu certs init --dir %s` first "+
				"(or start `sspemu`, which makes it in .sspemu/pki), or give --dir the folder that holds %s and %s",
				dir, f, dir, certs.CAFile, certs.CAKeyFile)
		}
	}
	return nil
}
