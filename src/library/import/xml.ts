/**
 * A small XML reader for the dataset files an import reads (CVAT for images 1.1): elements with their attributes,
 * text and children, each with the line it starts on so a problem can name it. It reads well-formed XML 1.0
 * documents as CVAT and Datumaro write them: the declaration, comments, CDATA, processing instructions and a
 * DOCTYPE without an internal subset are passed over; the five predefined entities and character references are
 * decoded. It is not a validating parser and knows no namespaces (a prefixed name is kept as written).
 */
import { BadInputError } from "../../errors.ts";

export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  /** The element's own text (character data directly inside it), decoded, joined. */
  text: string;
  /** 1-based line of its start tag. */
  line: number;
}

const NAME = /[A-Za-z_:][-A-Za-z0-9._:\u00B7\u00C0-\uFFFF]*/y;
const SPACE = /[ \t\r\n]*/y;
const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

/** Decodes entity and character references; throws on an unknown or malformed one. */
function decode(text: string, fail: (message: string) => never): string {
  if (!text.includes("&")) return text;
  return text.replace(/&([^;&\s]*);?/g, (whole, ref: string) => {
    if (!whole.endsWith(";")) fail(`"&" that starts no reference (${JSON.stringify(whole)}): write &amp;`);
    if (ref.startsWith("#x") || ref.startsWith("#X")) {
      const code = parseInt(ref.slice(2), 16);
      if (/^[0-9a-fA-F]+$/.test(ref.slice(2)) && code <= 0x10ffff) return String.fromCodePoint(code);
    } else if (ref.startsWith("#")) {
      const code = Number(ref.slice(1));
      if (/^[0-9]+$/.test(ref.slice(1)) && code <= 0x10ffff) return String.fromCodePoint(code);
    } else if (ref in ENTITIES) return ENTITIES[ref];
    return fail(`unknown reference ${JSON.stringify(whole)}`);
  });
}

/**
 * Parses an XML document into its root element. Throws BadInputError naming `file`, the line and what is wrong
 * (an unclosed tag, a mismatched end tag, a bad attribute, text after the root).
 */
export function parseXml(text: string, file: string): XmlElement {
  const src = text.replace(/^\uFEFF/, "");
  let pos = 0;
  // Line numbers: the offsets where lines start, searched when a line is needed.
  const lineStarts = [0];
  for (let i = src.indexOf("\n"); i >= 0; i = src.indexOf("\n", i + 1)) lineStarts.push(i + 1);
  const lineAt = (offset: number): number => {
    let lo = 0, hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
  const fail = (message: string, at = pos): never => {
    throw new BadInputError(
      `${file} line ${lineAt(at)}: ${message}; is it an XML file (CVAT for images 1.1)?`,
    );
  };
  const skipSpace = () => {
    SPACE.lastIndex = pos;
    SPACE.exec(src);
    pos = SPACE.lastIndex;
  };
  const readName = (): string => {
    NAME.lastIndex = pos;
    const m = NAME.exec(src);
    if (!m) return fail(`expected a name, found ${JSON.stringify(src.slice(pos, pos + 10))}`);
    pos = NAME.lastIndex;
    return m[0];
  };
  /** Skips what is not an element or text: comments, CDATA is text so handled by the caller, PIs, DOCTYPE. */
  const skipMarkup = (): boolean => {
    if (src.startsWith("<!--", pos)) {
      const end = src.indexOf("-->", pos + 4);
      if (end < 0) fail("a comment that is never closed (-->)");
      pos = end + 3;
      return true;
    }
    if (src.startsWith("<?", pos)) {
      const end = src.indexOf("?>", pos + 2);
      if (end < 0) fail("a processing instruction that is never closed (?>)");
      pos = end + 2;
      return true;
    }
    if (src.startsWith("<!DOCTYPE", pos)) {
      const end = src.indexOf(">", pos);
      if (end < 0 || src.slice(pos, end).includes("[")) fail("a DOCTYPE with an internal subset is not read");
      pos = end + 1;
      return true;
    }
    return false;
  };

  // The prolog: declaration, comments, DOCTYPE, space.
  for (;;) {
    skipSpace();
    if (!skipMarkup()) break;
  }
  if (src[pos] !== "<") fail(pos >= src.length ? "the file is empty" : "text before the root element");

  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;
  let textParts: string[] = [];
  const flushText = () => {
    if (textParts.length && stack.length) stack[stack.length - 1].text += textParts.join("");
    textParts = [];
  };
  while (pos < src.length) {
    if (src[pos] !== "<") {
      const next = src.indexOf("<", pos);
      const end = next < 0 ? src.length : next;
      const chunk = src.slice(pos, end);
      if (stack.length === 0) {
        if (chunk.trim() !== "") fail("text after the root element");
      } else textParts.push(decode(chunk, (m) => fail(m)));
      pos = end;
      continue;
    }
    if (src.startsWith("<![CDATA[", pos)) {
      const end = src.indexOf("]]>", pos);
      if (end < 0) fail("a CDATA section that is never closed (]]>)");
      if (stack.length === 0) fail("CDATA outside the root element");
      textParts.push(src.slice(pos + 9, end));
      pos = end + 3;
      continue;
    }
    if (skipMarkup()) continue;
    if (src.startsWith("</", pos)) {
      const start = pos;
      pos += 2;
      const name = readName();
      skipSpace();
      if (src[pos] !== ">") fail(`end tag </${name} is not closed with ">"`);
      pos++;
      flushText();
      const open = stack.pop();
      if (!open) fail(`end tag </${name}> with no element open`, start);
      if (open!.name !== name) {
        fail(`end tag </${name}> closes <${open!.name}> opened on line ${open!.line}`, start);
      }
      continue;
    }
    // A start tag.
    flushText();
    const start = pos;
    pos++;
    const name = readName();
    const element: XmlElement = { name, attributes: {}, children: [], text: "", line: lineAt(start) };
    const parent = stack.at(-1) ?? null;
    if (parent) parent.children.push(element);
    else if (root) fail(`a second root element <${name}> (the first is <${root.name}>)`, start);
    else root = element;
    for (;;) {
      const before = pos;
      skipSpace();
      if (src.startsWith("/>", pos)) {
        pos += 2;
        break;
      }
      if (src[pos] === ">") {
        pos++;
        stack.push(element);
        break;
      }
      if (pos >= src.length) fail(`<${name}> is never closed`, start);
      if (pos === before) fail(`expected a space, "/>" or ">" in <${name}>`);
      const attr = readName();
      skipSpace();
      if (src[pos] !== "=") fail(`attribute ${attr} of <${name}> has no value (write ${attr}="...")`);
      pos++;
      skipSpace();
      const quote = src[pos];
      if (quote !== '"' && quote !== "'") fail(`the value of ${attr} in <${name}> is not quoted`);
      const end = src.indexOf(quote, pos + 1);
      if (end < 0) fail(`the value of ${attr} in <${name}> is never closed`);
      const raw = src.slice(pos + 1, end);
      if (raw.includes("<")) fail(`the value of ${attr} in <${name}> contains "<"`);
      if (attr in element.attributes) fail(`attribute ${attr} is given twice in <${name}>`);
      // Line ends and tabs in a value read as spaces (XML's attribute value normalisation); references stay.
      element.attributes[attr] = decode(raw.replace(/[\t\n\r]/g, " "), (m) => fail(m));
      pos = end + 1;
    }
  }
  if (stack.length) fail(`<${stack.at(-1)!.name}> opened on line ${stack.at(-1)!.line} is never closed`);
  if (!root) fail("no root element");
  return root!;
}
