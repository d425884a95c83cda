/**
 * A configuration the program cannot start with: a task file (not JSON, a missing or
 * malformed field; never a 600–609 result), a scenario, a password file, a flag's file.
 * Reported before anything runs, one line per problem naming the file, the field and what was
 * wrong; exit status 2.
 */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join("\n"));
    this.name = "ConfigError";
    this.problems = problems;
  }

  static in(file: string, problems: string[]): ConfigError {
    return new ConfigError(problems.map((p) => `${file}: ${p}`));
  }
}
