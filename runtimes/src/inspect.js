// How console.log shows a value that is not a string: a small, one-line cousin of Node's
// util.inspect. quickjs_main.c evaluates this file once; its value is the function.
(function () {
  "use strict";
  const MAX_DEPTH = 2;
  const MAX_ITEMS = 100;
  const identifier = /^[A-Za-z_$][\w$]*$/;

  function quote(text) {
    return "'" + JSON.stringify(text).slice(1, -1).replace(/\\"/g, '"').replace(/'/g, "\\'") + "'";
  }

  function key(name) {
    return typeof name === "symbol" ? "[" + name.toString() + "]"
      : identifier.test(name) ? name : quote(name);
  }

  function errorText(error) {
    const head = String(error);
    const stack = typeof error.stack === "string" ? error.stack : "";
    if (!stack) return head;
    const frames = stack.replace(/\n$/, "");
    return frames.startsWith(head) ? frames : head + "\n" + frames;
  }

  function list(open, close, prefix, items, total) {
    if (total > items.length) items.push("... " + (total - items.length) + " more items");
    if (!items.length) return prefix + open + close;
    return prefix + open + " " + items.join(", ") + " " + close;
  }

  function show(value, depth, seen) {
    switch (typeof value) {
      case "string": return quote(value);
      case "number": return Object.is(value, -0) ? "-0" : String(value);
      case "bigint": return value + "n";
      case "symbol": return value.toString();
      case "undefined": return "undefined";
      case "boolean": return String(value);
      case "function":
        return /^class\b/.test(Function.prototype.toString.call(value))
          ? "[class " + (value.name || "(anonymous)") + "]"
          : "[Function: " + (value.name || "(anonymous)") + "]";
    }
    if (value === null) return "null";
    if (value instanceof Error) return errorText(value);
    if (value instanceof Date) return isNaN(value) ? "Invalid Date" : value.toISOString();
    if (value instanceof RegExp) return String(value);
    if (seen.includes(value)) return "[Circular]";
    const proto = Object.getPrototypeOf(value);
    const name = proto === null ? "[Object: null prototype]"
      : typeof proto.constructor === "function" ? proto.constructor.name : "";
    if (depth > MAX_DEPTH) return Array.isArray(value) ? "[Array]" : "[" + (name || "Object") + "]";
    seen.push(value);
    try {
      if (Array.isArray(value) || (ArrayBuffer.isView(value) && !(value instanceof DataView))) {
        const items = [];
        for (let i = 0; i < value.length && i < MAX_ITEMS; i++) {
          items.push(i in value ? show(value[i], depth + 1, seen) : "<empty>");
        }
        const prefix = Array.isArray(value)
          ? (name === "Array" ? "" : name + "(" + value.length + ") ")
          : name + "(" + value.length + ") ";
        return list("[", "]", prefix, items, value.length);
      }
      if (value instanceof Map || value instanceof Set) {
        const items = [];
        for (const entry of value) {
          if (items.length === MAX_ITEMS) break;
          items.push(value instanceof Map
            ? show(entry[0], depth + 1, seen) + " => " + show(entry[1], depth + 1, seen)
            : show(entry, depth + 1, seen));
        }
        return list("{", "}", name + "(" + value.size + ") ", items, value.size);
      }
      const names = Object.keys(value);
      const items = names.slice(0, MAX_ITEMS)
        .map((k) => key(k) + ": " + show(value[k], depth + 1, seen));
      return list("{", "}", name && name !== "Object" ? name + " " : "", items, names.length);
    } finally {
      seen.pop();
    }
  }

  return (value) => (value instanceof Error ? errorText(value) : show(value, 0, []));
})();
