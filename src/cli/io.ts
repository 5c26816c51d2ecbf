/** What a CLI command may do to the outside world; main.ts provides the real one, tests a recording one. */
export interface CommandIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  stdout(line: string): void;
  stderr(line: string): void;
  /** All of standard input, as UTF-8. */
  readStdin(): Promise<string>;
}
