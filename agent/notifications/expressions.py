"""Conditions and templates in Jinja2's sandbox: compiled once, at configuration load.

Argo CD writes `when` and `oncePer` in expr and templates in Go's text/template; here both
are Jinja2, so a seed's `app.status.operationState.phase in ['Succeeded']` is valid as
written, and a template ports by changing `{{.app.metadata.name}}` to
`{{ app.metadata.name }}`. `nil` is defined (as None) so `app.status.operationState != nil`
ports unchanged too.

Two environments, both sandboxed and immutable (a template cannot change the context it
is given, nor reach Python internals):

    runtime   missing fields chain to an empty value, as Argo CD's `?.` and Go's
              `<no value>` do: `app.status.operationState.phase` is empty, not an
              error, while no sync has run
    check     missing fields are errors; every condition and template is evaluated
              once against a complete sample app at load, so a misspelt field
              (`app.status.heath`) or a runtime type error is refused then, not at
              send time
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

Context = Mapping[str, Any]


class CompileError(ValueError):
    """A condition or template that does not compile or fails against the sample app; the message
    says where and why (Jinja2's own words, with the line for templates)."""


def _environment(undefined: type[jinja2.Undefined]) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=undefined, autoescape=False, keep_trailing_newline=False)
    env.globals["nil"] = None
    env.policies["json.dumps_function"] = functools.partial(json.dumps, default=_undefined_as_text)
    return env


def _undefined_as_text(value: object) -> str:
    """`tojson` of a missing field: empty text at runtime (a Slack field with no value), the
    missing-field error when checking (str() of a strict undefined raises it)."""
    if isinstance(value, jinja2.Undefined):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


@dataclass(frozen=True)
class Compiler:
    """One pair of environments per configuration load."""

    runtime: ImmutableSandboxedEnvironment = field(
        default_factory=lambda: _environment(jinja2.ChainableUndefined))
    check: ImmutableSandboxedEnvironment = field(default_factory=lambda: _environment(jinja2.StrictUndefined))

    def expression(self, source: str, *, samples: Iterable[Context]) -> Expression:
        """Compile a condition or oncePer expression and evaluate it against every sample."""
        if not source.strip():
            raise CompileError("is empty")
        try:
            strict = self.check.compile_expression(source, undefined_to_none=False)
            compiled = self.runtime.compile_expression(source, undefined_to_none=False)
            for sample in samples:
                strict(**sample)
        except jinja2.TemplateSyntaxError as exc:
            raise CompileError(f"{source!r} is not a valid expression: {exc.message}") from exc
        except jinja2.UndefinedError as exc:
            raise CompileError(f"{source!r} refers to something an application does not have: {exc.message}") \
                from exc
        except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
            raise CompileError(f"{source!r} fails on a sample application: {type(exc).__name__}: {exc}") from exc
        return Expression(source, _flat_globals(compiled))

    def template(self, source: str, *, samples: Iterable[Context]) -> Template:
        """Compile a template and render it against every sample."""
        try:
            strict = self.check.from_string(source)
            compiled = self.runtime.from_string(source)
            for sample in samples:
                strict.render(**sample)
        except jinja2.TemplateSyntaxError as exc:
            raise CompileError(f"line {exc.lineno}: {exc.message}") from exc
        except jinja2.UndefinedError as exc:
            raise CompileError(f"refers to something an application does not have: {exc.message}") from exc
        except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
            raise CompileError(f"fails on a sample application: {type(exc).__name__}: {exc}") from exc
        return Template(source, compiled)

    def trusted_template(self, source: str) -> Template:
        """A built-in template (checked by the test suite, not at each load): compiled at its first use,
        so a configuration load does not pay for the whole catalog."""
        return Template(source, None, self.runtime)


def _flat_globals(compiled: Any) -> Any:
    """The expression with its globals in a plain dict instead of Jinja2's ChainMap of template and
    environment globals (the same names and values: the environment's are set before compiling).
    Every evaluation copies them into a new context; iterating a ChainMap was half of what deciding
    the catalog's triggers cost per stored state, which ten thousand apps pay at every change."""
    template = getattr(compiled, "_template", None)
    if template is not None and not isinstance(template.globals, dict):
        template.globals = dict(template.globals)
    return compiled


@dataclass(frozen=True)
class Expression:
    """A compiled condition or oncePer key; compared (for reloads) by its source."""

    source: str
    compiled: Any = field(compare=False, repr=False)

    def value(self, context: Context) -> Any:
        """Raises what Jinja2 raises on a runtime failure (the caller records it as a problem)."""
        return self.compiled(**context)

    def holds(self, context: Context) -> bool:
        return bool(self.value(context))

    def key(self, context: Context) -> str:
        """The oncePer value as text; empty when it names nothing (no sync has run yet, say)."""
        value = self.value(context)
        if value is None or isinstance(value, jinja2.Undefined):
            return ""
        return str(value)


@dataclass(frozen=True)
class Template:
    """A compiled template (or one compiled at first use); compared (for reloads) by its source."""

    source: str
    compiled: jinja2.Template | None = field(compare=False, repr=False)
    environment: ImmutableSandboxedEnvironment | None = field(default=None, compare=False, repr=False)
    _later: list[jinja2.Template] = field(default_factory=list, compare=False, repr=False)

    def render(self, context: Context) -> str:
        if self.compiled is not None:
            return self.compiled.render(**context)
        if not self._later:
            assert self.environment is not None
            self._later.append(self.environment.from_string(self.source))
        return self._later[0].render(**context)


RUNTIME_ERRORS: tuple[type[Exception], ...] = (
    jinja2.TemplateError, TypeError, ValueError, ArithmeticError, LookupError, AttributeError)
