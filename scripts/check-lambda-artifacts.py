#!/usr/bin/env python3
"""Checks what `sam build` left in .aws-sam/build, for `make package`.

For every AWS::Serverless::Function in the template: .aws-sam/build/<Function>/bootstrap exists,
is executable, is a 64-bit little-endian Linux (OS ABI SysV or GNU/Linux) ELF executable for the
chosen architecture (e_machine 183 = aarch64 for arm64, 62 = x86_64), needs no glibc symbol
version newer than the runtime's (provided.al2023: glibc 2.34), and zips (deflate, in memory,
as SAM packages it) to at most 8 MB (10^6 bytes, as the README's figures). Prints a table of the
sizes; exits 1 naming every failure, 2 when it cannot run at all.

    scripts/check-lambda-artifacts.py --arch arm64 [--template infra/template.yaml]
                                      [--build-dir .aws-sam/build] [--max-zip-mb 8]
                                      [--max-glibc 2.34]
"""

import argparse
import io
import os
import re
import struct
import sys
import zipfile

import yaml  # PyYAML, installed with aws-sam-cli in .venv/package

E_MACHINE = {"arm64": 183, "x86_64": 62}
MACHINE_NAME = {183: "aarch64", 62: "x86_64", 3: "i386", 40: "arm"}
OSABI_NAME = {0: "SysV", 3: "GNU/Linux"}
ET_EXEC, ET_DYN = 2, 3
# The version names a dynamically linked binary needs from glibc (in .dynstr / .gnu.version_r).
GLIBC_VERSION = re.compile(rb"GLIBC_(\d+)\.(\d+)(?:\.(\d+))?\x00")


class TemplateLoader(yaml.SafeLoader):
    """Reads CloudFormation short forms (!Ref, !Sub, …) as plain values."""


def _any_tag(loader, _suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)


TemplateLoader.add_multi_constructor("!", _any_tag)


def functions(template_path):
    """(logical id, cargo binary) of every serverless function, in template order."""
    with open(template_path, encoding="utf-8") as f:
        template = yaml.load(f, Loader=TemplateLoader)
    found = []
    for name, resource in (template.get("Resources") or {}).items():
        if isinstance(resource, dict) and resource.get("Type") == "AWS::Serverless::Function":
            binary = ((resource.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary", "?")
            found.append((name, binary))
    return found


def elf_problems(data, arch):
    """Why `data` is not a Linux ELF executable for `arch` (empty when it is)."""
    if data[:4] != b"\x7fELF":
        return ["not an ELF file (magic %r)" % data[:4]]
    problems = []
    ei_class, ei_data, osabi = data[4], data[5], data[7]
    if ei_class != 2:
        problems.append("not 64-bit ELF (EI_CLASS %d)" % ei_class)
    if ei_data != 1:
        problems.append("not little-endian (EI_DATA %d)" % ei_data)
        return problems
    if osabi not in OSABI_NAME:
        problems.append("OS ABI %d is neither SysV (0) nor GNU/Linux (3)" % osabi)
    e_type, e_machine = struct.unpack_from("<HH", data, 16)
    if e_type not in (ET_EXEC, ET_DYN):
        problems.append("not an executable (e_type %d)" % e_type)
    if e_machine != E_MACHINE[arch]:
        problems.append(
            "built for %s (e_machine %d), expected %s (e_machine %d)"
            % (MACHINE_NAME.get(e_machine, "?"), e_machine, arch, E_MACHINE[arch])
        )
    return problems


def glibc_needed(data):
    """The newest GLIBC_x.y symbol version the binary names, or None (static or no glibc)."""
    versions = [tuple(int(g or 0) for g in m.groups()) for m in GLIBC_VERSION.finditer(data)]
    return max(versions) if versions else None


def version_text(version):
    return ".".join(str(v) for v in (version[:2] if version[2:] == (0,) else version))


def zipped_size(data):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, data)
    return len(buffer.getvalue())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=sorted(E_MACHINE), required=True)
    parser.add_argument("--template", default="infra/template.yaml")
    parser.add_argument("--build-dir", default=".aws-sam/build")
    parser.add_argument("--max-zip-mb", type=float, default=8.0)
    parser.add_argument("--max-glibc", default="2.34", help="the runtime's glibc (provided.al2023: 2.34)")
    args = parser.parse_args()

    try:
        wanted = functions(args.template)
    except (OSError, yaml.YAMLError) as e:
        print("check-lambda-artifacts: cannot read %s: %s" % (args.template, e), file=sys.stderr)
        return 2
    if not wanted:
        print("check-lambda-artifacts: no AWS::Serverless::Function in %s" % args.template, file=sys.stderr)
        return 2

    limit = int(args.max_zip_mb * 1e6)
    max_glibc = tuple(int(v) for v in (args.max_glibc.split(".") + ["0"])[:3])
    failures = []
    rows = []
    for name, binary in wanted:
        path = os.path.join(args.build_dir, name, "bootstrap")
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            failures.append("%s: no artifact: %s" % (name, e))
            rows.append((name, binary, "-", "-", "-", "-", "MISSING"))
            continue
        problems = elf_problems(data, args.arch)
        if not os.access(path, os.X_OK):
            problems.append("%s is not executable" % path)
        glibc = glibc_needed(data)
        if glibc and glibc > max_glibc:
            problems.append("needs glibc %s, the runtime has %s" % (version_text(glibc), args.max_glibc))
        zipped = zipped_size(data)
        if zipped > limit:
            problems.append("zips to %.2f MB, over the %.2g MB limit" % (zipped / 1e6, args.max_zip_mb))
        osabi = OSABI_NAME.get(data[7], str(data[7])) if len(data) > 7 else "?"
        machine = struct.unpack_from("<H", data, 18)[0] if len(data) >= 20 else -1
        elf = "%s/%s" % (MACHINE_NAME.get(machine, str(machine)), osabi) if data[:4] == b"\x7fELF" else "not ELF"
        rows.append((name, binary, elf, version_text(glibc) if glibc else "none",
                     "%.2f" % (len(data) / 1e6), "%.2f" % (zipped / 1e6), "ok" if not problems else "FAIL"))
        failures.extend("%s (%s): %s" % (name, path, p) for p in problems)

    header = ("function", "binary", "ELF", "glibc", "bootstrap MB", "zip MB", "")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    print("Lambda artifacts in %s (%s; glibc = newest version needed, runtime %s; zip = deflate, "
          "limit %.2g MB; MB = 10^6 bytes):" % (args.build_dir, args.arch, args.max_glibc, args.max_zip_mb))
    for row in [header] + rows:
        cells = [str(c).rjust(w) if i in (4, 5) else str(c).ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        print("  " + "  ".join(cells).rstrip())
    if failures:
        print("check-lambda-artifacts: %d problem(s):" % len(failures), file=sys.stderr)
        for failure in failures:
            print("  - " + failure, file=sys.stderr)
        return 1
    zips = [float(r[5]) for r in rows]
    print("check-lambda-artifacts: %d functions ok: Linux ELF %s bootstrap, glibc ≤ %s, zipped %.2f–%.2f MB (≤ %.2g MB)"
          % (len(rows), args.arch, args.max_glibc, min(zips), max(zips), args.max_zip_mb))
    return 0


if __name__ == "__main__":
    sys.exit(main())
