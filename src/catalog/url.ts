/**
 * `catalog.url` as text: what makes one usable, the schema names allowed in it, and the URL with its password
 * hidden for messages. Pure, so the config parser and both backends check and print it the same way.
 */

/** A PostgreSQL schema name the catalog accepts (`?schema=NAME`): lower-case letters, digits and _. */
export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** The URL with its password replaced by `***`. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@]*@/, "//$1:***@");
  }
}

/** Why a `catalog.url` cannot be used, or null (the password is never repeated in the message). */
export function catalogUrlProblem(url: string): string | null {
  if (url === "" || url.startsWith("sqlite:")) {
    return url === "sqlite:" ? 'sqlite: needs a file path ("sqlite:.data/catalog.sqlite")' : null;
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    try {
      const u = new URL(url);
      if (!u.hostname) return "a postgres:// URL needs a host (postgres://USER:PASSWORD@HOST:PORT/DATABASE)";
      const schema = u.searchParams.get("schema");
      if (schema !== null && !SCHEMA_NAME.test(schema)) {
        return `schema ${JSON.stringify(schema)} is not a plain name: use lower-case letters, digits and _`;
      }
      return null;
    } catch {
      return "not a valid URL: write postgres://USER:PASSWORD@HOST:PORT/DATABASE";
    }
  }
  return `${JSON.stringify(redactUrl(url))} is neither sqlite:PATH nor ` +
    "postgres://USER:PASSWORD@HOST:PORT/DATABASE (leave it empty for the file under catalog.data_dir)";
}
