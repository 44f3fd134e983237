"""Running a Dockerfile: Docker 20.10's classic builder over skiff's engine.

Each step makes an image on top of the previous one (kept as build cache, out of listings): RUN
in a container of skiff's own runtime on an overlay rootfs whose upper dir becomes the step's
layer (skiff.image.pack); COPY and ADD into a detached overlay of the previous image (nothing
mounted in any namespace), its upper dir the layer; the other instructions change the config
only (``empty_layer`` in the history). A step whose parent image, instruction and arguments (and
for COPY/ADD the sources' content) were seen before reuses that step's image: a rebuild with
no change runs no container.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import shutil
import sys
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Mapping, NamedTuple, Protocol, Sequence

from skiff.build.context import Owner, Root
from skiff.build.parser import Dockerfile, Instruction, key_values, parse
from skiff.build.shell import expand, split_words
from skiff.errors import BuildError, SkiffError
from skiff.paths import Paths

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from skiff.image.store import Image, ImageStore, LayerInfo

PROXY_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
              "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")
DEFAULT_SHELL = ["/bin/sh", "-c"]
CONFIG_ONLY = frozenset({"ENV", "LABEL", "USER", "EXPOSE", "VOLUME", "CMD", "ENTRYPOINT", "STOPSIGNAL",
                         "HEALTHCHECK", "ONBUILD", "SHELL", "MAINTAINER", "ARG"})


class Writer(Protocol):
    """Where the steps' lines go: a text file, or the Engine API's message stream."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


class BuildOptions(NamedTuple):
    context: str                              # a directory, or "-" (stdin: a tar or a Dockerfile)
    dockerfile: str | None = None             # -f
    tags: Sequence[str] = ()
    build_args: Mapping[str, str | None] = {}  # --build-arg K=V (K alone: from the environment)
    target: str | None = None
    no_cache: bool = False
    labels: Mapping[str, str] = {}
    network: str = "bridge"
    quiet: bool = False
    pull: bool = False
    platform: str | None = None
    compression: str = "gzip"
    output: str | None = None                 # --output type=oci,dest=F
    iidfile: str | None = None


class Stage:
    """What the steps of one FROM ... have made so far."""

    def __init__(self, name: str, image: Image | None, platform: tuple[str, str, str] | None) -> None:
        self.name = name
        self.image = image
        self.platform = platform
        self.config: dict[str, Any] = dict(image.config) if image is not None else {}
        self.args: dict[str, str | None] = {}
        self.cmd_set = False
        self.maintainer = ""     # MAINTAINER: the history's and config's author

    @property
    def shell(self) -> list[str]:
        return list(self.config.get("Shell") or DEFAULT_SHELL)

    def env(self) -> dict[str, str]:
        """Variables for expansion: the stage's ARGs, then ENV over them (ENV always wins)."""
        values = {k: v for k, v in self.args.items() if v is not None}
        for item in self.config.get("Env") or []:
            key, _, value = item.partition("=")
            values[key] = value
        return values


class Builder:
    def __init__(self, paths: Paths, opts: BuildOptions, out: Writer, context_dir: Path,
                 run_output: int | None = None) -> None:
        from skiff.build.ignore import IgnoreRules
        from skiff.image.pack import source_date_epoch
        from skiff.image.store import ImageStore

        self.paths = paths
        self.opts = opts
        self.out = out
        self.store: ImageStore = ImageStore(paths)
        self.context_dir = context_dir
        ignore_file = context_dir / ".dockerignore"
        self.ignore = IgnoreRules(ignore_file.read_text() if ignore_file.is_file() else "")
        self.epoch = source_date_epoch()
        self.cache_dir = paths.root / "builder" / "cache"
        self.run_output = run_output   # the fd RUN's output goes to (None: stdout)
        self.digests_file = paths.root / "builder" / "file-digests.json"
        self.file_digests: dict[str, list[Any]] = _read_digests(self.digests_file)
        self.digests_read = dict(self.file_digests)
        self.context_fds: set[int] = set()
        self.stages: list[Stage] = []
        self.used_args: set[str] = set()
        self.step = 0
        self.total = 0
        self.escape = "\\"
        self.meta_args: dict[str, str | None] = {}

    # --- the whole build --------------------------------------------------------------------

    def build(self, dockerfile: Dockerfile) -> Image:
        self.escape = dockerfile.escape
        meta, stages = _split_stages(dockerfile)
        stages = self._up_to_target(stages)
        self.total = len(meta) + sum(len(s) for s in stages) + (1 if self.opts.labels else 0)
        meta_args: dict[str, str | None] = {}
        for inst in meta:
            self._announce(inst)
            for key, word in key_values(inst, self.escape):
                _, sep, value = word.partition("=")
                meta_args[key] = self._arg_value(key, expand(value, self._meta_env(meta_args), self.escape)
                                                 if sep else None)
        self.meta_args = meta_args
        for index, instructions in enumerate(stages):
            stage = self._from(instructions[0], index)
            for inst in instructions[1:]:
                self._dispatch(stage, inst)
            if index == len(stages) - 1 and self.opts.labels:
                self.step += 1
                text = " ".join(f"{json.dumps(k)}={json.dumps(v)}" for k, v in self.opts.labels.items())
                self._say(f"Step {self.step}/{self.total} : LABEL {text}")
                labels = {**(stage.config.get("Labels") or {}), **self.opts.labels}
                self._config_step(stage, f"LABEL {text}", {**stage.config, "Labels": labels})
            self.stages.append(stage)
        final = self.stages[-1]
        if final.image is None:
            raise BuildError("No image was generated. Is your Dockerfile empty?")
        unused = sorted(set(self.opts.build_args) - self.used_args - set(PROXY_ARGS))
        if unused:
            self._say(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed")
        return final.image

    def _up_to_target(self, stages: list[list[Instruction]]) -> list[list[Instruction]]:
        if not self.opts.target:
            return stages
        for index, stage in enumerate(stages):
            if _stage_name(stage[0], self.escape) == self.opts.target.lower():
                return stages[:index + 1]
        raise BuildError(f"failed to reach build target {self.opts.target} in Dockerfile")

    def _meta_env(self, meta_args: Mapping[str, str | None]) -> dict[str, str]:
        return {k: v for k, v in meta_args.items() if v is not None}

    def _arg_value(self, key: str, default: str | None) -> str | None:
        if key in self.opts.build_args:
            self.used_args.add(key)
            given = self.opts.build_args[key]
            return given if given is not None else os.environ.get(key, default)
        return default

    def _announce(self, inst: Instruction) -> None:
        self.step += 1
        self._say(f"Step {self.step}/{self.total} : {inst.original}")

    def _say(self, line: str) -> None:
        if line and not self.opts.quiet:
            print(line, file=self.out, flush=True)

    def _fail(self, inst: Instruction, message: str) -> BuildError:
        return BuildError(message, hint=f"step {self.step}/{self.total}: {inst.keyword}, {inst.where()}")

    # --- FROM ---------------------------------------------------------------------------------

    def _from(self, inst: Instruction, index: int) -> Stage:
        self._announce(inst)
        words = [expand(w, self._meta_env(self.meta_args), self.escape) for w in split_words(inst.rest, self.escape)]
        if len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
            raise self._fail(inst, "FROM requires either one or three arguments")
        base = words[0]
        name = words[2].lower() if len(words) == 3 else str(index)
        platform_flag = (inst.flags.get("platform") or [self.opts.platform or ""])[-1] or None
        image = None
        earlier = self._earlier_stages()
        if base.lower() in earlier:
            image = earlier[base.lower()].image
        elif base.lower() != "scratch":
            from skiff.registry import ensure_image

            try:
                image = ensure_image(self.paths, base, policy="always" if self.opts.pull else "missing",
                                     platform=platform_flag, out=sys.stderr, quiet=self.opts.quiet)
            except SkiffError as exc:
                raise self._fail(inst, exc.message) from None
        stage = Stage(name, image, None)
        if image is not None:
            self._say(f" ---> {image.short_id}")
        triggers = list(stage.config.get("OnBuild") or [])
        if triggers and image is not None:
            self._say(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}")
            stage.config["OnBuild"] = None
            for trigger in triggers:
                parsed = parse(trigger).instructions
                for trig in parsed:
                    if trig.keyword in ("FROM", "ONBUILD", "MAINTAINER"):
                        raise self._fail(inst, f"{trig.keyword} isn't allowed as an ONBUILD trigger")
                    self._dispatch(stage, trig._replace(line=inst.line), announce=False)
        return stage

    # --- one instruction ---------------------------------------------------------------------

    def _dispatch(self, stage: Stage, inst: Instruction, announce: bool = True) -> None:
        if announce:
            self._announce(inst)
        try:
            if inst.keyword == "RUN":
                self._run(stage, inst)
            elif inst.keyword in ("COPY", "ADD"):
                self._copy(stage, inst)
            elif inst.keyword == "WORKDIR":
                self._workdir(stage, inst)
            elif inst.keyword == "ARG":
                self._arg(stage, inst)
            else:
                self._config_step(stage, inst.original, self._new_config(stage, inst))
        except SkiffError as exc:
            if isinstance(exc, BuildError) and exc.hint is not None:
                raise  # named its step already (a trigger of ONBUILD, say)
            raise self._fail(inst, exc.message) from None

    def _new_config(self, stage: Stage, inst: Instruction) -> dict[str, Any]:
        """The config after a config-only instruction (Docker's dispatchers)."""
        config = dict(stage.config)
        env = stage.env()
        keyword, rest = inst.keyword, inst.rest
        if keyword in ("ENV", "LABEL"):
            pairs = [(expand(k, env, self.escape), expand(v, env, self.escape))
                     for k, v in key_values(inst, self.escape)]
            if keyword == "ENV":
                items = list(config.get("Env") or [])
                for key, value in pairs:
                    items = [i for i in items if i.partition("=")[0] != key] + [f"{key}={value}"]
                config["Env"] = items
            else:
                config["Labels"] = {**(config.get("Labels") or {}), **dict(pairs)}
            return config
        if keyword in ("CMD", "ENTRYPOINT"):
            command: list[str] = inst.json_args if inst.json_args is not None else [*stage.shell, rest] if rest else []
            config["Cmd" if keyword == "CMD" else "Entrypoint"] = command or None
            if keyword == "CMD":
                stage.cmd_set = True
            elif not stage.cmd_set:
                config["Cmd"] = None
            return config
        if keyword == "SHELL":
            config["Shell"] = list(inst.json_args or [])
            return config
        if keyword == "ONBUILD":
            trigger_keyword = rest.split(None, 1)[0].upper() if rest else ""
            if trigger_keyword in ("ONBUILD", "FROM", "MAINTAINER"):
                raise BuildError(f"{trigger_keyword} isn't allowed as an ONBUILD trigger")
            config["OnBuild"] = [*(config.get("OnBuild") or []), rest]
            return config
        if keyword == "MAINTAINER":
            stage.maintainer = rest
            return config
        from skiff.image.changes import apply_changes

        if keyword == "VOLUME":
            words = inst.json_args if inst.json_args is not None else split_words(rest, self.escape)
            return apply_changes(config, [f"VOLUME {json.dumps([expand(w, env, self.escape) for w in words])}"])
        if keyword in ("USER", "EXPOSE", "STOPSIGNAL"):
            words = [expand(w, env, self.escape) for w in split_words(rest, self.escape)]
            return apply_changes(config, [f"{keyword} {' '.join(words)}"])
        if keyword == "HEALTHCHECK":
            return apply_changes(config, [f"HEALTHCHECK {rest}"])
        raise BuildError(f"unknown instruction: {keyword}")

    def _arg(self, stage: Stage, inst: Instruction) -> None:
        env = stage.env()
        for key, word in key_values(inst, self.escape):
            _, sep, value = word.partition("=")
            default = expand(value, env, self.escape) if sep else self.meta_args.get(key)
            stage.args[key] = self._arg_value(key, default)
        self._config_step(stage, inst.original, dict(stage.config))

    def _workdir(self, stage: Stage, inst: Instruction) -> None:
        path = expand(inst.rest, stage.env(), self.escape)
        workdir = posixpath.normpath(posixpath.join(stage.config.get("WorkingDir") or "/", path))
        config = {**stage.config, "WorkingDir": workdir}
        key = self._key(stage, ["WORKDIR", workdir])

        def make(root_fd: int) -> None:
            from skiff.build.context import mkdir_in_root

            os.close(mkdir_in_root(root_fd, workdir))

        self._layer_step(stage, inst, key, config, make, keep_empty=False)

    # --- steps and the cache ------------------------------------------------------------------

    def _key(self, stage: Stage, what: list[Any]) -> str:
        parent = stage.image.id if stage.image is not None else "scratch"
        text = json.dumps([parent, stage.config, what], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def _cached(self, key: str) -> Image | None:
        if self.opts.no_cache:
            return None
        try:
            image_id = (self.cache_dir / key).read_text().strip()
            return self.store.get(image_id)
        except (OSError, SkiffError):
            return None

    def _remember(self, key: str, image: Image) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_dir / f".{key}.tmp"
        tmp.write_text(image.id)
        os.replace(tmp, self.cache_dir / key)

    def _use(self, stage: Stage, image: Image, cached: bool) -> None:
        if cached:
            self._say(" ---> Using cache")
        self._say(f" ---> {image.short_id}")
        stage.image = image
        stage.config = dict(image.config)

    def _config_step(self, stage: Stage, created_by: str, config: dict[str, Any]) -> None:
        key = self._key(stage, ["config", created_by, config])
        hit = self._cached(key)
        if hit is not None:
            self._use(stage, hit, cached=True)
            return
        self._commit(stage, key, config, f"/bin/sh -c #(nop)  {created_by}", None)

    def _commit(self, stage: Stage, key: str, config: dict[str, Any], created_by: str,
                layer: LayerInfo | None) -> None:
        from skiff.image.authoring import Step, add_step

        step = Step(config=config, created_by=created_by, layer=layer,
                    author=stage.maintainer)
        image = _add_cached_step(self.store, stage.image, step, self.epoch, stage.platform)
        self._remember(key, image)
        self._use(stage, image, cached=False)

    # --- RUN --------------------------------------------------------------------------------

    def _run(self, stage: Stage, inst: Instruction) -> None:
        if stage.image is None or not stage.image.layers:
            raise BuildError("RUN needs an image with a shell: this stage is FROM scratch")
        command = self._run_command(stage, inst)
        arg_env = self._run_args(stage)
        created_by = " ".join(command)
        if arg_env:
            created_by = f"|{len(arg_env)} {' '.join(arg_env)} {created_by}"
        key = self._key(stage, ["RUN", command, arg_env])
        hit = self._cached(key)
        if hit is not None:
            self._use(stage, hit, cached=True)
            return
        layer = self._run_container(stage, command, arg_env)
        self._commit(stage, key, dict(stage.config), created_by, layer)

    def _run_command(self, stage: Stage, inst: Instruction) -> list[str]:
        if inst.json_args is not None:
            return list(inst.json_args)
        script = inst.rest
        if inst.heredocs:
            if len(inst.heredocs) == 1 and inst.rest.strip().lstrip("<-").strip("'\"") == inst.heredocs[0].name:
                return [*stage.shell, inst.heredocs[0].content]  # "RUN <<EOF": the heredoc is the script
            # "RUN cat <<A >a": the shell reads each here-document itself (its variables are the shell's)
            script = inst.rest + "\n" + "".join(f"{doc.content}{doc.name}\n" for doc in inst.heredocs)
        return [*stage.shell, script]

    def _run_args(self, stage: Stage) -> list[str]:
        """Build args in scope, as RUN's environment gets them (ENV of the same name wins)."""
        env_keys = {item.partition("=")[0] for item in stage.config.get("Env") or []}
        items = [f"{k}={v}" for k, v in sorted(stage.args.items()) if v is not None and k not in env_keys]
        for key in PROXY_ARGS:
            value = self.opts.build_args.get(key)
            if key in self.opts.build_args and key not in stage.args and value is not None:
                items.append(f"{key}={value}")
        return items

    def _run_container(self, stage: Stage, command: list[str], arg_env: list[str]) -> LayerInfo:
        from skiff.engine import Engine
        from skiff.engine.commit import runtime_made
        from skiff.engine.options import RunOptions
        from skiff.image.pack import store_layer

        assert stage.image is not None
        engine = Engine(self.paths)
        opts = RunOptions(image=stage.image.id, command=command, entrypoint="", env=arg_env,
                          network=self.opts.network, pull="never")
        created: list[str] = []

        def on_create(container: Any) -> None:
            created.append(container.id)
            self._say(f" ---> Running in {container.id[:12]}")

        sys.stdout.flush()
        with _output_fd(self.opts.quiet, self.run_output) as fd:
            status = engine.run(opts, output=(fd, fd), on_create=on_create)
        try:
            if status != 0:
                raise BuildError(f"The command '{' '.join(command)}' returned a non-zero code: {status}")
            container = engine.find(created[0])
            return store_layer(self.store, container.bundle / "upper", self.opts.compression, self.epoch,
                               skip=runtime_made, adopt=True)
        finally:
            if created:
                with contextlib.suppress(SkiffError):
                    engine.remove_container(created[0], force=True)
                self._say(f"Removing intermediate container {created[0][:12]}")

    # --- COPY and ADD -----------------------------------------------------------------------

    def _copy(self, stage: Stage, inst: Instruction) -> None:
        from skiff.build import context

        env = stage.env()
        if inst.json_args is not None:
            words = [expand(w, env, self.escape) for w in inst.json_args]
        else:
            words = [expand(w, env, self.escape) for w in split_words(inst.rest, self.escape)]
        if len(words) < 2:
            raise BuildError(f"{inst.keyword} requires at least two arguments, but only one was provided. "
                             f"Destination could not be determined.")
        *patterns, dest = words
        owner = self._owner(stage, inst)
        chmod = _chmod(inst)
        workdir = stage.config.get("WorkingDir") or "/"
        dest_path = dest if dest.startswith("/") else posixpath.join(workdir, dest)
        dest_is_dir = dest.endswith("/") or dest.endswith("/.") or dest == "."
        if len(patterns) > 1 and not dest_is_dir:
            raise BuildError(f"When using {inst.keyword} with more than one source file, the destination must "
                             f"be a directory and end with a /")
        urls = [p for p in patterns if p.startswith(("http://", "https://"))]
        if urls:
            if inst.keyword == "COPY":
                raise BuildError("source can't be a URL for COPY")
            self._add_urls(stage, inst, urls, dest_path, dest_is_dir, owner)
            return
        with contextlib.ExitStack() as stack:
            if inst.heredocs:
                patterns = [word.lstrip("<").lstrip("-") for word in patterns]
                root = self._heredoc_root(stage, inst, patterns, stack)
            else:
                root = self._source_root(stage, inst, stack)
            sources = context.resolve_sources(root, patterns, f"{inst.keyword} failed")
            stack.callback(context.close_sources, sources)
            content = context.hash_sources(root, sources, self.file_digests if root.fd == self._context_fd(root)
                                           else None)
            key = self._key(stage, [inst.keyword, patterns, dest_path, owner, chmod, content,
                                    inst.flags.get("from")])
            hit = self._cached(key)
            if hit is not None:
                self._use(stage, hit, cached=True)
                return
            extract = inst.keyword == "ADD"

            def fill(root_fd: int) -> None:
                copier = context.Copier(root, owner, chmod)
                for source in sources:
                    if extract and not source.is_dir and _is_archive(source.fd):
                        self._extract(root_fd, dest_path, source.fd)
                        continue
                    if source.is_dir or dest_is_dir or len(sources) > 1 or _is_dir_in(root_fd, dest_path):
                        target = context.mkdir_in_root(root_fd, dest_path, owner if dest_is_dir else None)
                        name = None
                    else:
                        target = context.mkdir_in_root(root_fd, posixpath.dirname(dest_path) or "/")
                        name = posixpath.basename(dest_path)
                    try:
                        copier.copy(source, target, name)
                    finally:
                        os.close(target)

            self._layer_step(stage, inst, key, dict(stage.config), fill)

    def _source_root(self, stage: Stage, inst: Instruction, stack: contextlib.ExitStack) -> Root:
        from skiff.build.ignore import IgnoreRules

        origin = (inst.flags.get("from") or [""])[-1]
        if not origin:
            fd = os.open(self.context_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            stack.callback(os.close, fd)
            stack.callback(self.context_fds.discard, fd)
            self.context_fds.add(fd)
            return Root(fd, self.ignore, "build context")
        origin = expand(origin, stage.env(), self.escape)
        stages = self._earlier_stages()
        image = stages[origin.lower()].image if origin.lower() in stages else None
        if image is None:
            from skiff.registry import ensure_image

            image = ensure_image(self.paths, origin, out=sys.stderr, quiet=self.opts.quiet)
        fd = _image_root(image, stack)
        return Root(fd, IgnoreRules(), f"stage {origin}")

    def _heredoc_root(self, stage: Stage, inst: Instruction, names: list[str], stack: contextlib.ExitStack) -> Root:
        """``COPY <<EOF /dest``: each here-document a file of that name (variables expanded unless
        its name was quoted), in a scratch directory that is the step's only source."""
        from skiff.build.ignore import IgnoreRules

        docs = {doc.name: doc for doc in inst.heredocs}
        unknown = [name for name in names if name not in docs]
        if unknown:
            raise BuildError(f"{inst.keyword}: here-documents and other sources cannot be mixed ({unknown[0]})")
        self.paths.tmp.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="heredoc-", dir=self.paths.tmp))
        stack.callback(shutil.rmtree, scratch, True)
        for name in names:
            doc = docs[name]
            (scratch / name).write_text(expand(doc.content, stage.env(), self.escape) if doc.expand else doc.content)
            (scratch / name).chmod(0o644)
        fd = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        stack.callback(os.close, fd)
        return Root(fd, IgnoreRules(), "here-documents")

    def _earlier_stages(self) -> dict[str, Stage]:
        """The stages built so far by name and by index (``COPY --from=0``), as Docker names them."""
        found = {str(index): stage for index, stage in enumerate(self.stages)}
        found.update({stage.name: stage for stage in self.stages})
        return found

    def _context_fd(self, root: Root) -> int:
        """The root's fd when it is the build context's (whose file digests are kept), else -1."""
        return root.fd if root.fd in self.context_fds else -1

    def save_digests(self) -> None:
        """Keep the context's file digests for the next build (at most the last 100,000 files)."""
        from skiff.store import write_json

        if self.file_digests == self.digests_read:
            return
        entries = list(self.file_digests.items())[-100_000:]
        self.digests_file.parent.mkdir(parents=True, exist_ok=True)
        write_json(self.digests_file, dict(entries), durable=False)

    def _owner(self, stage: Stage, inst: Instruction) -> Owner | None:
        chown = (inst.flags.get("chown") or [""])[-1]
        if not chown:
            return None
        chown = expand(chown, stage.env(), self.escape)
        user, _, group = chown.partition(":")
        if user.isdigit() and (not group or group.isdigit()):
            return Owner(int(user), int(group or user))
        if stage.image is None:
            raise BuildError(f"unable to convert uid/gid chown string to host mapping: {chown}")
        with contextlib.ExitStack() as stack:
            uid, gid = _lookup_user(_image_root(stage.image, stack), user, group)
        return Owner(uid, gid)

    def _extract(self, root_fd: int, dest_path: str, archive_fd: int) -> None:
        """ADD of a local archive: unpacked securely (skiff.image.unpack, as a layer is) into a
        scratch directory, then copied into the destination with the entries' owners."""
        from skiff.build.context import Copier, Source, mkdir_in_root
        from skiff.build.ignore import IgnoreRules
        from skiff.image.unpack import unpack_layer

        self.paths.tmp.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="add-", dir=self.paths.tmp))
        try:
            with open(f"/proc/self/fd/{archive_fd}", "rb") as data:
                try:
                    unpack_layer(data, scratch)
                except SkiffError as exc:
                    raise BuildError(f"ADD failed: {exc.message}") from None
            fd = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            target = mkdir_in_root(root_fd, dest_path)
            try:
                root = Root(fd, IgnoreRules(), "archive")
                Copier(root, None, None, keep_owner=True).copy(Source("", fd, True), target, None)
            finally:
                os.close(target)
                os.close(fd)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _add_urls(self, stage: Stage, inst: Instruction, urls: list[str], dest_path: str, dest_is_dir: bool,
                  owner: Owner | None) -> None:
        import urllib.request

        downloads = []
        for url in urls:
            try:
                with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 (the user's URL)
                    downloads.append((url, answer.read()))
            except OSError as exc:
                raise BuildError(f"ADD failed: failed to GET {url}: {getattr(exc, 'reason', exc)}") from None
        key = self._key(stage, ["ADD", [(u, hashlib.sha256(d).hexdigest()) for u, d in downloads], dest_path, owner])
        hit = self._cached(key)
        if hit is not None:
            self._use(stage, hit, cached=True)
            return

        def fill(root_fd: int) -> None:
            from skiff.build.context import mkdir_in_root

            for url, data in downloads:
                name = posixpath.basename(url.split("?")[0].rstrip("/")) or "index.html"
                path = posixpath.join(dest_path, name) if dest_is_dir else dest_path
                parent = mkdir_in_root(root_fd, posixpath.dirname(path))
                try:
                    fd = os.open(f"/proc/self/fd/{parent}", os.O_RDONLY | os.O_DIRECTORY)
                    try:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(posixpath.basename(path), dir_fd=fd)
                        out = os.open(posixpath.basename(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                                      0o600, dir_fd=fd)
                        with os.fdopen(out, "wb") as f:
                            f.write(data)
                            if owner:
                                os.fchown(f.fileno(), *owner)
                    finally:
                        os.close(fd)
                finally:
                    os.close(parent)

        self._layer_step(stage, inst, key, dict(stage.config), fill)

    def _layer_step(self, stage: Stage, inst: Instruction, key: str, config: dict[str, Any],
                    fill: Callable[[int], None], keep_empty: bool = True) -> None:
        """A step that writes into the image's root: a detached overlay of its layers over a
        fresh upper dir (or, FROM scratch, the empty upper dir itself) that becomes the layer."""
        from skiff.image.pack import store_layer

        hit = self._cached(key)
        if hit is not None:
            self._use(stage, hit, cached=True)
            return
        self.paths.tmp.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="build-", dir=self.paths.tmp))
        try:
            upper = work / "upper"
            upper.mkdir()
            (work / "work").mkdir()
            with contextlib.ExitStack() as stack:
                root_fd = _writable_root(stage.image, upper, work / "work", stack)
                fill(root_fd)
            layer = store_layer(self.store, upper, self.opts.compression, self.epoch, adopt=True) \
                if keep_empty or any(upper.iterdir()) else None
        finally:
            shutil.rmtree(work, ignore_errors=True)
        created_by = f"/bin/sh -c #(nop) {inst.original}" if inst.keyword != "WORKDIR" else \
            f"/bin/sh -c #(nop) WORKDIR {config.get('WorkingDir')}"
        self._commit(stage, key, config, created_by, layer)


# --- helpers ------------------------------------------------------------------------------------


def _add_cached_step(store: ImageStore, parent: Image | None, step: Any, epoch: int | None,
                     platform: tuple[str, str, str] | None) -> Image:
    from skiff.image.authoring import image_config

    config = image_config(parent, step, epoch, platform)
    layers = list(parent.layers if parent is not None else [])
    if step.layer is not None:
        layers.append(step.layer)
    return store.add_image(json.dumps(config, separators=(",", ":")).encode(), layers, [], build_cache=True)


def _read_digests(path: Path) -> dict[str, list[Any]]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _split_stages(dockerfile: Dockerfile) -> tuple[list[Instruction], list[list[Instruction]]]:
    meta: list[Instruction] = []
    stages: list[list[Instruction]] = []
    for inst in dockerfile.instructions:
        if inst.keyword == "FROM":
            stages.append([inst])
        elif stages:
            stages[-1].append(inst)
        elif inst.keyword == "ARG":
            meta.append(inst)
        else:
            raise BuildError(f"dockerfile parse error line {inst.line}: no build stage in current context")
    if not stages:
        raise BuildError("the Dockerfile has no FROM instruction")
    return meta, stages


def _stage_name(inst: Instruction, escape: str) -> str:
    words = split_words(inst.rest, escape)
    return words[2].lower() if len(words) == 3 else ""


def _chmod(inst: Instruction) -> int | None:
    value = (inst.flags.get("chmod") or [""])[-1]
    if not value:
        return None
    try:
        mode = int(value, 8)
    except ValueError:
        raise BuildError(f"invalid chmod parameter {value!r}: expected an octal mode") from None
    if mode > 0o7777:
        raise BuildError(f"invalid chmod parameter {value!r}")
    return mode


def _is_archive(fd: int) -> bool:
    """ADD extracts local tar archives (plain, gzip, bzip2, xz), as Docker's does."""
    import tarfile

    path = f"/proc/self/fd/{fd}"
    try:
        with open(path, "rb") as f:
            head = f.read(6)
        if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00":
            return True
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def _is_dir_in(root_fd: int, path: str) -> bool:
    from skiff import linux

    try:
        fd = linux.openat2(root_fd, path.lstrip("/") or ".", os.O_PATH | os.O_DIRECTORY,
                           resolve=linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_MAGICLINKS)
    except SkiffError:
        return False
    os.close(fd)
    return True


def _writable_root(image: Image | None, upper: Path, work: Path, stack: contextlib.ExitStack) -> int:
    from skiff import linux

    if image is None or not image.layer_dirs:
        fd = os.open(upper, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    else:
        fs_fd = linux.fsopen("overlay")
        try:
            linux.fsconfig_string(fs_fd, "upperdir", str(upper))
            linux.fsconfig_string(fs_fd, "workdir", str(work))
            for lower in reversed(image.layer_dirs):
                linux.fsconfig_string(fs_fd, "lowerdir+", str(lower))
            linux.fsconfig_string(fs_fd, "index", "off")
            linux.fsconfig_create(fs_fd)
            fd = linux.fsmount(fs_fd, 0)
        finally:
            os.close(fs_fd)
    stack.callback(os.close, fd)
    return fd


def _image_root(image: Image, stack: contextlib.ExitStack) -> int:
    """A read-only root of an image's layers (COPY --from, --chown names)."""
    from skiff import linux

    if len(image.layer_dirs) == 1:
        fd = os.open(image.layer_dirs[0], os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    elif not image.layer_dirs:
        tmp = tempfile.mkdtemp()
        stack.callback(shutil.rmtree, tmp, True)
        fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    else:
        fs_fd = linux.fsopen("overlay")
        try:
            for lower in reversed(image.layer_dirs):
                linux.fsconfig_string(fs_fd, "lowerdir+", str(lower))
            linux.fsconfig_create(fs_fd)
            fd = linux.fsmount(fs_fd, linux.MOUNT_ATTR_RDONLY)
        finally:
            os.close(fs_fd)
    stack.callback(os.close, fd)
    return fd


def _lookup_user(root_fd: int, user: str, group: str) -> tuple[int, int]:
    """A ``--chown`` name looked up in the image's /etc/passwd and /etc/group (inside its root)."""
    from skiff import linux

    def read(path: str) -> list[list[str]]:
        try:
            fd = linux.openat2(root_fd, path, os.O_RDONLY, resolve=linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_MAGICLINKS)
        except SkiffError:
            return []
        with os.fdopen(fd) as f:
            return [line.rstrip("\n").split(":") for line in f if ":" in line]

    uid = gid = None
    if user.isdigit():
        uid = int(user)
    for fields in read("etc/passwd"):
        if len(fields) > 3 and fields[0] == user:
            uid, gid = int(fields[2]), int(fields[3])
    if uid is None:
        raise BuildError(f"unable to find user {user}: no matching entries in passwd file")
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            gid = next((int(f[2]) for f in read("etc/group") if len(f) > 2 and f[0] == group), None)
            if gid is None:
                raise BuildError(f"unable to find group {group}: no matching entries in group file")
    return uid, gid if gid is not None else uid


@contextlib.contextmanager
def _output_fd(quiet: bool, fd: int | None) -> Iterator[int]:
    if not quiet:
        yield fd if fd is not None else sys.stdout.fileno()
        return
    fd = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


# --- the entry point ----------------------------------------------------------------------------


def build(paths: Paths, opts: BuildOptions, out: Writer = sys.stdout, stdin: IO[bytes] | None = None,
          run_output: int | None = None, on_built: Callable[[Image], None] | None = None) -> Image:
    """``skiff build``: the image of the Dockerfile's last stage (or ``--target``), tagged.
    ``out`` gets the steps' lines, ``run_output`` (an fd) RUN's output; ``on_built`` is told the
    image before the closing lines (the Engine API's ``aux`` message)."""
    _check_tags(opts.tags)
    with _context_dir(opts, stdin) as (context_dir, dockerfile_text):
        dockerfile = parse(dockerfile_text)
        builder = Builder(paths, opts, out, context_dir, run_output)
        try:
            image = builder.build(dockerfile)
        finally:
            builder.save_digests()
    store = builder.store
    store.unhide(image.id)
    if on_built is not None:
        on_built(image)
    builder._say(f"Successfully built {image.short_id}")
    for tag in opts.tags:
        store.tag(image.id, tag)
        from skiff.image.reference import parse_reference_raw

        builder._say(f"Successfully tagged {parse_reference_raw(tag).with_default_tag().familiar}")
    if opts.iidfile:
        Path(opts.iidfile).write_text(image.id)
    if opts.output:
        _write_output(store, image, opts.output)
    return store.get(image.id)


def _check_tags(tags: Sequence[str]) -> None:
    """Every ``-t`` is checked before anything is built, in Docker's client's words."""
    from skiff.errors import InvalidReference, UsageError
    from skiff.image.reference import parse_reference_raw

    for tag in tags:
        try:
            if parse_reference_raw(tag).digest:
                raise InvalidReference("digest")
        except InvalidReference:
            raise UsageError(f'invalid argument "{tag}" for "-t, --tag" flag: invalid reference format') from None


def _write_output(store: ImageStore, image: Image, spec: str) -> None:
    from skiff.image.archive import save_archive

    fields = dict(part.partition("=")[::2] for part in spec.split(","))
    kind, dest = fields.get("type", ""), fields.get("dest", "")
    if kind not in ("oci", "docker", "tar") or not dest:
        raise BuildError(f"unsupported --output {spec!r}: use type=oci,dest=FILE")
    save_archive(store, [image.id], None if dest == "-" else Path(dest))


@contextlib.contextmanager
def _context_dir(opts: BuildOptions, stdin: IO[bytes] | None) -> Iterator[tuple[Path, str]]:
    """The context as a directory and the Dockerfile's text."""
    if opts.context != "-":
        context = Path(opts.context)
        if not context.is_dir():
            raise BuildError(f'unable to prepare context: path "{opts.context}" not found')
        dockerfile = Path(opts.dockerfile) if opts.dockerfile else context / "Dockerfile"
        if opts.dockerfile == "-":
            yield context, (stdin or sys.stdin.buffer).read().decode()
            return
        try:
            text = dockerfile.read_text()
        except OSError as exc:
            raise BuildError(f"unable to prepare context: unable to evaluate symlinks in Dockerfile path: "
                             f"lstat {dockerfile}: {exc.strerror.lower() if exc.strerror else exc}") from None
        yield context, text
        return
    data = (stdin or sys.stdin.buffer).read()
    tmp = Path(tempfile.mkdtemp(prefix="skiff-build-"))
    try:
        context = tmp / "context"
        context.mkdir()
        if _looks_like_tar(data):
            import io

            from skiff.image.unpack import unpack_layer

            unpack_layer(io.BytesIO(data), context)
            name = opts.dockerfile or "Dockerfile"
            try:
                text = (context / name.lstrip("/")).read_text()
            except OSError:
                raise BuildError(f"Cannot locate specified Dockerfile: {name}") from None
        else:
            text = data.decode()
        yield context, text
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _looks_like_tar(data: bytes) -> bool:
    import io
    import tarfile

    if data[:2] == b"\x1f\x8b" or data[:4] == b"\x28\xb5\x2f\xfd":
        return True
    return len(data) >= 512 and tarfile.is_tarfile(io.BytesIO(data))
