/**
 * A task file the probe cannot run: not JSON, a missing or malformed field. Reported before
 * any run, one line per problem naming the file, the field and what was wrong; never a
 * 600–609 result.
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
