"""The typed parameter schema: one table drives parsing, defaults, validation and metadata.

A ``Schema`` is a list of ``Param`` plus cross-parameter rules (required together, required if another has a
value, mutually exclusive, free rules). ``Schema.parse(env)`` reads ``OCF_RESKEY_*`` once, converts each value
to its type (or through the parameter's own converter), so values arrive final: an agent never parses a
parameter again. It applies defaults and deprecated aliases, and collects every problem instead of stopping
at the first. Required parameters are
*reported* as problems, never enforced here: the runtime decides (through the policy) what a problem means
for the current action, so a missing parameter cannot turn a probe or a stop into a fatal 6.
"""

STRING = "string"
INTEGER = "integer"
BOOLEAN = "boolean"
TIME = "time"
SELECT = "select"
FLOAT = "float"     # rendered as string in metadata (OCF has no float type)
LIST = "list"       # words separated by blanks or commas -> tuple of str; rendered as string

_TRUE = ("1", "yes", "true", "on", "y", "ja")
_FALSE = ("0", "no", "false", "off", "n", "nein")
_TIME_UNITS = (("msec", 0.001), ("ms", 0.001), ("us", 0.000001), ("sec", 1.0), ("s", 1.0),
               ("min", 60.0), ("m", 60.0), ("hr", 3600.0), ("h", 3600.0))


class Problem:
    """One thing wrong with the parameters. ``environmental`` problems mean "not usable on this node"."""

    __slots__ = ("param", "message", "environmental")

    def __init__(self, param, message, environmental=False):
        self.param = param
        self.message = message
        self.environmental = environmental

    def __str__(self):
        if self.param:
            return "parameter '%s' %s" % (self.param, self.message)
        return self.message

    def __repr__(self):
        return "Problem(%r, %r, environmental=%r)" % (self.param, self.message, self.environmental)


def parse_boolean(text):
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError("must be a boolean (true/false, yes/no, 1/0, on/off)")


def parse_integer(text):
    try:
        return int(text.strip(), 10)
    except ValueError:
        raise ValueError("must be an integer") from None


def parse_time(text):
    """A Pacemaker-style duration ("90", "90s", "500ms", "2min", "1h") as float seconds."""
    word = text.strip().lower()
    factor = 1.0
    for unit, unit_factor in _TIME_UNITS:
        if word.endswith(unit):
            number = word[: -len(unit)].strip()
            if number and (number[-1].isdigit() or number[-1] == "."):
                word, factor = number, unit_factor
                break
    try:
        seconds = float(word) * factor
    except ValueError:
        raise ValueError("must be a duration such as 90, 90s, 500ms or 2min") from None
    if seconds < 0 or seconds != seconds or seconds == float("inf"):
        raise ValueError("must be a non-negative duration")
    return seconds


def parse_float(text):
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError("must be a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("must be a finite number")
    return value


def parse_list(text):
    """Words separated by blanks or commas, as a tuple (empty text: ())."""
    return tuple(text.replace(",", " ").split())


def format_time(seconds):
    if seconds == int(seconds):
        return "%ds" % seconds
    return "%dms" % round(seconds * 1000)


class Param:
    """One resource parameter: its type, default, documentation and checks.

    ``deprecated`` names the parameter that replaces this one (or is True when there is none): a value given
    under the old name is used for the new one when the new one is not set. ``unique_group`` names a group of
    parameters whose combined values must be unique across resources (OCF 1.1); ``unique=True`` is the 1.0
    spelling for a group of one. ``private`` values are never logged. ``advanced`` parameters are tuning
    knobs whose default suits almost every cluster (said in the metadata and the man page). ``convert`` turns
    the text into the final value (raising ValueError with a message) where the type alone does not; a text
    ``default`` goes through it too (and is shown as written). ``checks`` run on the converted value; ranges
    and what each check demands are rendered into the metadata.
    """

    __slots__ = ("name", "type", "default", "required", "unique", "unique_group", "reloadable", "deprecated",
                 "advanced", "private", "shortdesc", "longdesc", "choices", "checks", "default_doc", "converter")

    def __init__(self, name, type=STRING, default=None, required=False, shortdesc="", longdesc="",
                 choices=(), checks=(), unique=False, unique_group=None, reloadable=False, deprecated=None,
                 advanced=False, private=False, default_doc=None, convert=None):
        if choices and type not in (SELECT, STRING):
            raise ValueError("choices only make sense for select parameters")
        self.name = name
        self.type = SELECT if choices else type
        self.converter = convert
        if isinstance(default, str) and (convert is not None or self.type in (FLOAT, LIST)):
            default_doc = default if default_doc is None else default_doc
            default = self.convert(default)
        self.default = default
        self.required = required
        self.unique = unique
        self.unique_group = unique_group or (name if unique else None)
        self.reloadable = reloadable
        self.deprecated = deprecated
        self.advanced = advanced
        self.private = private
        self.shortdesc = shortdesc or name
        self.longdesc = longdesc or self.shortdesc
        self.choices = tuple(choices)
        self.checks = tuple(checks)
        self.default_doc = default_doc

    def convert(self, text):
        """Turn the raw environment string into a typed value; ValueError with a message when it is wrong."""
        if self.converter is not None:
            return self.converter(text)
        if self.type == BOOLEAN:
            return parse_boolean(text)
        if self.type == INTEGER:
            return parse_integer(text)
        if self.type == TIME:
            return parse_time(text)
        if self.type == FLOAT:
            return parse_float(text)
        if self.type == LIST:
            return parse_list(text)
        if self.type == SELECT:
            word = text.strip()
            if word not in self.choices:
                raise ValueError("must be one of %s" % "|".join(self.choices))
            return word
        return text

    def default_text(self):
        """The default as it appears in metadata (OCF text), or None."""
        if self.default_doc is not None:
            return self.default_doc
        if self.default is None:
            return None
        if self.type == BOOLEAN:
            return "true" if self.default else "false"
        if self.type == TIME:
            return format_time(self.default)
        if self.type == LIST:
            return " ".join(self.default)
        return str(self.default)

    def notes(self):
        """Sentences for the metadata: what the checks demand (ranges included) and whether it is advanced."""
        out = []
        for check in self.checks:
            text = getattr(check, "describe", None)
            if text:
                out.append(text)
        if self.advanced:
            out.append("Advanced: the default suits almost every cluster.")
        return out


class Values:
    """The parsed parameters: attribute access by name, plus what was explicitly given."""

    def __init__(self, values, given, raw):
        self.__dict__.update(values)
        self._given = given
        self._raw = raw

    def given(self, name):
        """True when the admin set this parameter (as opposed to its default applying)."""
        return name in self._given

    def raw(self, name):
        return self._raw.get(name)

    def get(self, name, default=None):
        return self.__dict__.get(name, default)


RESERVED_NAMES = frozenset(name for name in dir(Values) if not name.startswith("__"))


class Schema:
    """An ordered set of Params with cross-parameter rules.

    ``required_together``: tuples of names that must be set together. ``required_if``: tuples ``(name, value,
    (names...))``: when parameter ``name`` has ``value`` (given or by default), each of ``names`` must be set.
    ``mutually_exclusive``: tuples of names of which at most one may be set. ``rules``: callables
    ``rule(values) -> None | Problem | str`` for anything else (a str becomes a configuration problem).
    A parameter named like an attribute of the parsed values (``given``, ``raw``, ``get``) is refused.
    """

    def __init__(self, *params, required_together=(), required_if=(), mutually_exclusive=(), rules=()):
        self.params = tuple(params)
        self.by_name = {}
        for param in self.params:
            if param.name in self.by_name:
                raise ValueError("duplicate parameter %s" % param.name)
            if param.name in RESERVED_NAMES or param.name.startswith("_"):
                raise ValueError("parameter name %s would shadow an attribute of the parsed values" % param.name)
            self.by_name[param.name] = param
        self.required_if = tuple((name, value, tuple(names)) for name, value, names in required_if)
        for group in (tuple(required_together) + tuple(mutually_exclusive)
                      + tuple((name,) + names for name, _, names in self.required_if)):
            for name in group:
                if name not in self.by_name:
                    raise ValueError("rule names unknown parameter %s" % name)
        self.required_together = tuple(tuple(g) for g in required_together)
        self.mutually_exclusive = tuple(tuple(g) for g in mutually_exclusive)
        self.rules = tuple(rules)

    def __iter__(self):
        return iter(self.params)

    def parse(self, env, environmental=True):
        """Parse ``env`` (an OcfEnv or a mapping of parameter name -> raw text).

        Returns ``(values, problems)``. Invalid values fall back to the default so that a stop or probe can
        still work out what to do. ``environmental=False`` skips checks that look at this node.
        """
        lookup = env.reskey if hasattr(env, "reskey") else env.get
        raw = {}
        for param in self.params:
            text = lookup(param.name)
            if text is not None:
                raw[param.name] = text
        # Deprecated names feed their replacement when the replacement is not set.
        for param in self.params:
            target = param.deprecated
            if isinstance(target, str) and param.name in raw and target not in raw:
                raw[target] = raw[param.name]
        values, given, problems = {}, set(), []
        for param in self.params:
            text = raw.get(param.name)
            if text is None or (text == "" and param.type != STRING):
                values[param.name] = param.default
                if param.required and text is None:
                    problems.append(Problem(param.name, "is required"))
                continue
            if text == "" and param.required:
                values[param.name] = param.default
                problems.append(Problem(param.name, "is required and must not be empty"))
                continue
            try:
                value = param.convert(text)
            except ValueError as err:
                values[param.name] = param.default
                problems.append(Problem(param.name, "%s (got %s)" % (err, _quote(text))))
                continue
            for check in param.checks:
                is_env = getattr(check, "environmental", False)
                if is_env and not environmental:
                    continue
                message = check(value)
                if message:
                    problems.append(Problem(param.name, message, environmental=is_env))
                    break
            else:
                values[param.name] = value
                given.add(param.name)
                continue
            values[param.name] = param.default
        for group in self.required_together:
            set_names = [n for n in group if n in given]
            if set_names and len(set_names) != len(group):
                problems.append(Problem(None, "parameters %s must be set together" % ", ".join(group)))
        for name, value, names in self.required_if:
            if values[name] == value:
                unset = [n for n in names if n not in given]
                if unset:
                    problems.append(Problem(unset[0], "is required when %s=%s" % (name, value)))
        for group in self.mutually_exclusive:
            set_names = [n for n in group if n in given]
            if len(set_names) > 1:
                problems.append(Problem(None, "parameters %s cannot be combined" % " and ".join(set_names)))
        result = Values(values, given, raw)
        for rule in self.rules:
            outcome = rule(result)
            if outcome:
                problems.append(outcome if isinstance(outcome, Problem) else Problem(None, str(outcome)))
        return result, problems


def _quote(text, limit=40):
    shown = text if len(text) <= limit else text[:limit] + "..."
    return repr(shown)
