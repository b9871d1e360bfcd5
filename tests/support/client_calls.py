"""Calls of redis-py's methods on the store's client, found with `ast` from the code's own type annotations.

A method name alone says nothing: `get`, `set`, `delete`, `keys`, `lock`, `wait`,
`append`, `time` are redis-py commands and also methods of dicts, lists, events
and Dolmen's own classes. So a call counts only when its receiver is known to
be a store client: a name, attribute or call whose type the annotations give
as `StoreClient`/`AsyncStoreClient` (or, inside `store/`, redis-py's types).
Types are followed, without running anything, through:

- parameters and variables annotated with a type, and variables assigned from a
  typed expression (a name counts only if every assignment to it in its scope
  is typed so: one it cannot type makes it unknown, never a client);
- `self` in a method, and attributes: annotated in the class body (dataclass
  fields), assigned `self.x = ...` in a method, properties, inherited from base
  classes;
- calls: a class is its instance; a function or method its return annotation
  (`connect(...)`, `probe_client(...)`, `Client(...).redis`), awaited or not;
- imports, relative ones and a package's re-exports (`from ..store import
  StoreClient`) included.

What it cannot follow it leaves out, so it misses rather than accuses: a client
inside a container (`clients[i].get`), an unannotated parameter (a lambda's), a
name bound by a loop, a `with` or an `except`, `getattr`, values crossing
untyped functions.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis
import redis.asyncio
from redis.commands import AsyncCoreCommands, AsyncRedisClusterCommands, CoreCommands, RedisClusterCommands

# Whose instances are store clients: the store's names for the handle, and redis-py's client classes (the store's own
# aliases `Redis`/`AsyncRedis` are strings that name them; `store/` is the one place that may use either).
CLIENT_TYPES = frozenset(
    {
        "dolmen.platform.store.connection.StoreClient",
        "dolmen.platform.store.connection.AsyncStoreClient",
        "dolmen.platform.store.connection.Redis",
        "dolmen.platform.store.connection.AsyncRedis",
        "redis.Redis",
        "redis.RedisCluster",
        "redis.asyncio.Redis",
        "redis.asyncio.RedisCluster",
        "redis.client.Redis",
        "redis.cluster.RedisCluster",
        "redis.asyncio.client.Redis",
        "redis.asyncio.cluster.RedisCluster",
    }
)
NONE = "None"
UNKNOWN: frozenset[str] = frozenset()


def redis_methods() -> frozenset[str]:
    """Every public method of redis-py's clients: the commands of `redis.commands`' core and cluster command
    classes (sync and async), and what the client classes add (`pipeline`, `execute_command`, `pubsub`, `lock`,
    `close`, ...)."""
    classes: tuple[type, ...] = (
        CoreCommands, AsyncCoreCommands, RedisClusterCommands, AsyncRedisClusterCommands,
        redis.Redis, redis.RedisCluster, redis.asyncio.Redis, redis.asyncio.RedisCluster,
    )  # fmt: skip
    return frozenset(
        name for cls in classes for name in dir(cls) if not name.startswith("_") and callable(getattr(cls, name, None))
    )


@dataclass(frozen=True, slots=True)
class ClientCall:
    """A call of a redis-py method on a store client."""

    module: str
    line: int
    source: str


@dataclass
class _Class:
    qualname: str
    bases: list[ast.expr]
    module: _Module
    # Attribute name -> how it gets its values (as `_Scope.bindings`), each with the scope to read it in.
    attrs: dict[str, list[tuple[str, ast.expr | None, _Scope]]] = field(default_factory=dict)
    methods: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = field(default_factory=dict)


@dataclass
class _Module:
    name: str
    package: str
    tree: ast.Module
    imports: dict[str, str] = field(default_factory=dict)  # local name -> qualified name
    scope: _Scope | None = None


@dataclass
class _Scope:
    module: _Module
    parent: _Scope | None
    owner: _Class | None = None  # the class whose method this is (`self`)
    # Name -> how it is bound: ("ann", annotation), ("value", expression), ("type", qualified name) or ("unknown", None).
    bindings: dict[str, list[tuple[str, ast.expr | str | None]]] = field(default_factory=dict)

    def bind(self, name: str, how: str, what: ast.expr | str | None) -> None:
        self.bindings.setdefault(name, []).append((how, what))


class ClientCalls:
    """The modules of the three folders, read once; `calls(prefixes)` lists the client calls of the others."""

    def __init__(self, root: Path, folders: dict[str, str]) -> None:
        self.modules: dict[str, _Module] = {}
        self.classes: dict[str, _Class] = {}
        self.functions: dict[str, tuple[ast.FunctionDef | ast.AsyncFunctionDef, _Module]] = {}
        self.methods = redis_methods()
        self._calls: list[tuple[ast.Call, _Scope]] = []
        self._busy: set[tuple[int, int]] = set()
        for folder, package in folders.items():
            for path in sorted((root / folder).rglob("*.py")):
                parts = [*package.split("."), *path.relative_to(root / folder).with_suffix("").parts]
                is_init = parts[-1] == "__init__"
                name = ".".join(parts[:-1] if is_init else parts)
                tree = ast.parse(path.read_text(), str(path))
                self.modules[name] = _Module(name, name if is_init else name.rpartition(".")[0], tree)
        for module in self.modules.values():
            self._read_imports(module)
        for module in self.modules.values():
            module.scope = _Scope(module, None)
            self._read_body(module.tree.body, module.scope, module.name, None)

    # ----------------------------------------------------------------- reading

    def _read_imports(self, module: _Module) -> None:
        for node in ast.walk(module.tree):
            if isinstance(node, ast.ImportFrom):
                base = module.package.split(".")[: len(module.package.split(".")) - node.level + 1] if node.level else []
                source = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    module.imports[alias.asname or alias.name] = f"{source}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    top = alias.name if alias.asname else alias.name.split(".")[0]
                    module.imports[alias.asname or top] = alias.name if alias.asname else top

    def _read_body(self, body: list[ast.stmt], scope: _Scope, prefix: str, owner: _Class | None) -> None:
        for node in body:
            self._read_statement(node, scope, prefix, owner)

    def _read_statement(self, node: ast.stmt, scope: _Scope, prefix: str, owner: _Class | None) -> None:
        if isinstance(node, ast.ClassDef):
            cls = _Class(f"{prefix}.{node.name}", list(node.bases), scope.module)
            self.classes[cls.qualname] = cls
            scope.bind(node.name, "unknown", None)
            for expr in [*node.bases, *node.keywords, *node.decorator_list]:
                self._read_node(expr, scope)
            # The class body's names are its attributes; its methods do not see them (Python's scoping).
            body_scope = _Scope(scope.module, scope)
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    cls.attrs.setdefault(item.target.id, []).append(("ann", item.annotation, body_scope))
                elif isinstance(item, ast.Assign) and all(isinstance(t, ast.Name) for t in item.targets):
                    for target in item.targets:
                        cls.attrs.setdefault(target.id, []).append(("value", item.value, body_scope))  # type: ignore[attr-defined]
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    cls.methods[item.name] = item
                    decorators = {ast.unparse(d) for d in item.decorator_list}
                    if decorators & {"property", "cached_property", "functools.cached_property"} and item.returns is not None:
                        cls.attrs.setdefault(item.name, []).append(("ann", item.returns, scope))
                    self._read_function(item, scope, cls.qualname, cls)
                else:
                    self._read_statement(item, body_scope, cls.qualname, None)
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if owner is None:
                if scope.parent is None:
                    self.functions[f"{prefix}.{node.name}"] = (node, scope.module)
                scope.bind(node.name, "unknown", None)
            self._read_function(node, scope, prefix, owner)
            return
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ExceptHandler):
                if child.type is not None:
                    self._read_node(child.type, scope)
            elif isinstance(child, ast.match_case):
                self._read_node(child.pattern, scope)
            elif not isinstance(child, ast.stmt):
                self._read_node(child, scope)  # the statement's own expressions; its body below
        if isinstance(node, ast.Assign):
            for target in node.targets:
                self._bind_target(target, node.value, scope)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            scope.bind(node.target.id, "ann", node.annotation)
        elif isinstance(node, ast.AnnAssign) and self._is_self_attr(node.target, scope):
            self._bind_attr(node.target, "ann", node.annotation, scope)  # type: ignore[arg-type]
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            scope.bind(node.target.id, "unknown", None)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            self._unknown_targets(node.target, scope)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if item.optional_vars is not None:
                    self._unknown_targets(item.optional_vars, scope)
        elif isinstance(node, ast.Try):
            for handler in node.handlers:
                if handler.name:
                    scope.bind(handler.name, "unknown", None)
        elif isinstance(node, (ast.Import, ast.ImportFrom)) and scope.parent is not None:
            for alias in node.names:
                scope.bind(alias.asname or alias.name.split(".")[0], "unknown", None)
        for attr in ("body", "orelse", "finalbody", "handlers"):
            inner = getattr(node, attr, None)
            if isinstance(inner, list):
                for child in inner:
                    if isinstance(child, ast.ExceptHandler):
                        self._read_body(child.body, scope, prefix, owner)
                    elif isinstance(child, ast.stmt):
                        self._read_statement(child, scope, prefix, owner)
        if isinstance(node, ast.Match):
            for case in node.cases:
                self._read_body(case.body, scope, prefix, owner)

    def _read_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef, outer: _Scope, prefix: str, owner: _Class | None) -> None:
        scope = _Scope(outer.module, outer, owner)
        params = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
        static = any(ast.unparse(d) in ("staticmethod", "classmethod") for d in node.decorator_list)
        for i, arg in enumerate(params):
            if i == 0 and owner is not None and not static:
                scope.bind(arg.arg, "type", owner.qualname)
            elif arg.annotation is not None:
                scope.bind(arg.arg, "ann", arg.annotation)
            else:
                scope.bind(arg.arg, "unknown", None)
        for extra in (node.args.vararg, node.args.kwarg):
            if extra is not None:
                scope.bind(extra.arg, "unknown", None)
        for default in [*node.args.defaults, *node.args.kw_defaults, *node.decorator_list]:
            if default is not None:
                self._read_node(default, outer)
        self._read_body(node.body, scope, f"{prefix}.{node.name}", None)

    def _read_node(self, node: ast.AST, scope: _Scope) -> None:
        """Expressions: remember calls with their scope; a lambda or comprehension gets a scope of its own."""
        if isinstance(node, ast.Lambda):
            inner = _Scope(scope.module, scope, scope.owner)
            for arg in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]:
                inner.bind(arg.arg, "unknown", None)
            self._read_node(node.body, inner)
            return
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            inner = _Scope(scope.module, scope, scope.owner)
            for generator in node.generators:
                self._read_node(generator.iter, scope)
                self._unknown_targets(generator.target, inner)
                for condition in generator.ifs:
                    self._read_node(condition, inner)
            parts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
            for part in parts:
                self._read_node(part, inner)
            return
        if isinstance(node, ast.NamedExpr):
            scope.bind(node.target.id, "value", node.value)
        if isinstance(node, ast.Call):
            self._calls.append((node, scope))
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, ast.stmt):
                self._read_node(child, scope)

    def _bind_target(self, target: ast.expr, value: ast.expr, scope: _Scope) -> None:
        if isinstance(target, ast.Name):
            scope.bind(target.id, "value", value)
        elif self._is_self_attr(target, scope):
            self._bind_attr(target, "value", value, scope)  # type: ignore[arg-type]
        else:
            self._unknown_targets(target, scope)

    def _unknown_targets(self, target: ast.expr, scope: _Scope) -> None:
        """Names (and `self` attributes) a tuple unpacking, a loop or a `with` binds to values it cannot type."""
        if isinstance(target, ast.Name):
            scope.bind(target.id, "unknown", None)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self._unknown_targets(element, scope)
        elif isinstance(target, ast.Starred):
            self._unknown_targets(target.value, scope)
        elif self._is_self_attr(target, scope):
            self._bind_attr(target, "unknown", None, scope)  # type: ignore[arg-type]

    @staticmethod
    def _is_self_attr(target: ast.expr, scope: _Scope) -> bool:
        return (
            isinstance(target, ast.Attribute)
            and isinstance(target.value, ast.Name)
            and scope.owner is not None
            and any(how == "type" for how, _ in scope.bindings.get(target.value.id, []))
        )

    @staticmethod
    def _bind_attr(target: ast.Attribute, how: str, what: ast.expr | None, scope: _Scope) -> None:
        assert scope.owner is not None
        scope.owner.attrs.setdefault(target.attr, []).append((how, what, scope))

    # ----------------------------------------------------------------- typing

    def _qualify(self, name: str, module: _Module) -> str:
        """The qualified name a module-level name refers to, imports and re-exports followed."""
        found = module.imports.get(name)
        return self._canonical(found) if found is not None else f"{module.name}.{name}"

    def _canonical(self, qualname: str, depth: int = 0) -> str:
        head, _, last = qualname.rpartition(".")
        owner = self.modules.get(head)
        if owner is not None and last in owner.imports and depth < 10:
            return self._canonical(owner.imports[last], depth + 1)
        return qualname

    def _ref(self, node: ast.expr, scope: _Scope) -> str | None:
        """The qualified name of a module-level thing `node` names (a class, function, module), None for a value."""
        if isinstance(node, ast.Name):
            look: _Scope | None = scope
            while look is not None:
                if node.id in look.bindings and look.parent is not None:
                    return None  # a local value
                look = look.parent
            module_scope = scope.module.scope
            if module_scope is not None and any(how != "unknown" for how, _ in module_scope.bindings.get(node.id, [])):
                return None  # a module-level variable
            return self._qualify(node.id, scope.module)
        if isinstance(node, ast.Attribute):
            base = self._ref(node.value, scope)
            if base is not None and (base in self.modules or base.split(".")[0] == "redis" or base in ("typing",)):
                return self._canonical(f"{base}.{node.attr}")
        return None

    def annotation(self, node: ast.expr | None, module: _Module) -> frozenset[str]:
        """The types an annotation names (a union's members; the outer type of a generic; None as `None`)."""
        if node is None:
            return UNKNOWN
        if isinstance(node, ast.Constant):
            if node.value is None:
                return frozenset({NONE})
            if isinstance(node.value, str):
                try:
                    return self.annotation(ast.parse(node.value, mode="eval").body, module)
                except SyntaxError:
                    return UNKNOWN
            return UNKNOWN
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            left, right = self.annotation(node.left, module), self.annotation(node.right, module)
            return left | right if left and right else UNKNOWN
        if isinstance(node, ast.Subscript):
            outer = self._type_ref(node.value, module)
            if outer in ("typing.Optional", "typing.Union"):
                items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
                found = [self.annotation(item, module) for item in items]
                union = frozenset().union(*found) | ({NONE} if outer == "typing.Optional" else set())
                return union if all(found) else UNKNOWN
            return frozenset({outer}) if outer else UNKNOWN
        ref = self._type_ref(node, module)
        return frozenset({ref}) if ref else UNKNOWN

    def _type_ref(self, node: ast.expr, module: _Module) -> str | None:
        """The qualified name an annotation's name or dotted name refers to (a type alias is a module variable)."""
        if isinstance(node, ast.Name):
            return self._qualify(node.id, module)
        if isinstance(node, ast.Attribute):
            base = self._type_ref(node.value, module)
            return self._canonical(f"{base}.{node.attr}") if base is not None else None
        return None

    def _bindings_type(self, bindings: list[tuple[str, ast.expr | str | None]], scope: _Scope) -> frozenset[str]:
        types: set[str] = set()
        for how, what in bindings:
            if how == "type" and isinstance(what, str):
                found = frozenset({what})
            elif how == "ann" and isinstance(what, ast.expr):
                found = self.annotation(what, scope.module)
            elif how == "value" and isinstance(what, ast.expr):
                found = self.type_of(what, scope)
            else:
                found = UNKNOWN
            if not found:
                return UNKNOWN  # one binding it cannot type: the name is unknown
            types |= found
        return frozenset(types)

    def _name_type(self, name: str, scope: _Scope) -> frozenset[str]:
        look: _Scope | None = scope
        while look is not None:
            if name in look.bindings:
                return self._bindings_type(look.bindings[name], look)
            look = look.parent
        return UNKNOWN

    def _attr_type(self, cls_name: str, attr: str, depth: int = 0) -> frozenset[str]:
        cls = self.classes.get(cls_name)
        if cls is None or depth > 10:
            return UNKNOWN
        if attr in cls.attrs:
            types: set[str] = set()
            for how, what, scope in cls.attrs[attr]:
                if what is None:
                    return UNKNOWN
                found = self.annotation(what, cls.module) if how == "ann" else self.type_of(what, scope)
                if not found:
                    return UNKNOWN
                types |= found
            return frozenset(types)
        for base in cls.bases:
            ref = self._ref(base, cls.module.scope) if cls.module.scope is not None else None
            if ref is not None and (found := self._attr_type(ref, attr, depth + 1)):
                return found
        return UNKNOWN

    def _method(self, cls_name: str, name: str, depth: int = 0) -> tuple[ast.FunctionDef | ast.AsyncFunctionDef, _Class] | None:
        cls = self.classes.get(cls_name)
        if cls is None or depth > 10:
            return None
        if name in cls.methods:
            return cls.methods[name], cls
        for base in cls.bases:
            ref = self._ref(base, cls.module.scope) if cls.module.scope is not None else None
            if ref is not None and (found := self._method(ref, name, depth + 1)):
                return found
        return None

    def _returns(self, node: ast.Call, scope: _Scope) -> frozenset[str]:
        ref = self._ref(node.func, scope)
        if ref is not None:
            if ref in self.classes:
                return frozenset({ref})
            if ref in self.functions:
                function, module = self.functions[ref]
                return self.annotation(function.returns, module)
            return UNKNOWN
        if isinstance(node.func, ast.Attribute):
            receiver = self.type_of(node.func.value, scope)
            types: set[str] = set()
            for cls_name in receiver:
                found = self._method(cls_name, node.func.attr)
                if found is None:
                    return UNKNOWN
                method, cls = found
                returns = self.annotation(method.returns, cls.module)
                if not returns:
                    return UNKNOWN
                types |= returns
            return frozenset(types)
        return UNKNOWN

    def type_of(self, node: ast.expr, scope: _Scope) -> frozenset[str]:
        """The types `node` may have, as qualified names; empty when the annotations do not tell."""
        key = (id(node), id(scope))
        if key in self._busy:
            return UNKNOWN  # a cycle (x = f(x)): no answer
        self._busy.add(key)
        try:
            if isinstance(node, ast.Name):
                return self._name_type(node.id, scope)
            if isinstance(node, ast.Attribute):
                receiver = self.type_of(node.value, scope)
                if not receiver or NONE in receiver:
                    return UNKNOWN
                found = [self._attr_type(cls_name, node.attr) for cls_name in receiver]
                return frozenset().union(*found) if all(found) else UNKNOWN
            if isinstance(node, ast.Call):
                return self._returns(node, scope)
            if isinstance(node, ast.Await):
                return self.type_of(node.value, scope)
            if isinstance(node, ast.IfExp):
                body, orelse = self.type_of(node.body, scope), self.type_of(node.orelse, scope)
                return body | orelse if body and orelse else UNKNOWN
            if isinstance(node, ast.BoolOp):
                found = [self.type_of(value, scope) for value in node.values]
                if not all(found):
                    return UNKNOWN
                if isinstance(node.op, ast.Or):  # `a or b` is b when a is None
                    found = [types - {NONE} for types in found[:-1]] + found[-1:]
                return frozenset().union(*found)
            if isinstance(node, ast.NamedExpr):
                return self.type_of(node.value, scope)
            if isinstance(node, ast.Constant) and node.value is None:
                return frozenset({NONE})
            return UNKNOWN
        finally:
            self._busy.discard(key)

    def is_client(self, node: ast.expr, scope: _Scope) -> bool:
        """Whether `node` is a store client by the annotations (possibly None, never anything else)."""
        types = self.type_of(node, scope) - {NONE}
        return bool(types) and types <= CLIENT_TYPES

    # ----------------------------------------------------------------- results

    def _outside(self, skip: tuple[str, ...]) -> Iterator[tuple[ast.Call, _Scope]]:
        for node, scope in self._calls:
            if not any(scope.module.name == p or scope.module.name.startswith(p + ".") for p in skip):
                yield node, scope

    def calls(self, skip: tuple[str, ...] = ()) -> Iterator[ClientCall]:
        """Each call of a redis-py method on a store client, in modules not under a prefix of `skip`."""
        for node, scope in self._outside(skip):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in self.methods and self.is_client(func.value, scope):
                yield ClientCall(scope.module.name, node.lineno, ast.unparse(func))

    def handles(self, skip: tuple[str, ...] = ()) -> Iterator[ClientCall]:
        """Each store client handed to a call as an argument (`DeploymentStore(self.gw.client.redis)`), in modules not
        under a prefix of `skip`: what the check sees of the clients it guards."""
        for node, scope in self._outside(skip):
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                if isinstance(arg, (ast.Name, ast.Attribute, ast.Call)) and self.is_client(arg, scope):
                    yield ClientCall(scope.module.name, node.lineno, ast.unparse(arg))
