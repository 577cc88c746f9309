"""The service's HTTP API (no `from __future__ import annotations`: FastAPI reads the
routes' annotations as types): a FastAPI ingress over the three deployments (OpenAPI page at
/docs). Every error is JSON {"error": message a person can act on}: unreadable image, no
face, face too small (400); upload over the byte or pixel cap (413); unsupported body (415);
invalid vector, size or crop flag (422); unknown model (404). Model names are only those
the server was started with; nothing a client sends is loaded as code or as a path. A
browser asking for `/` gets the web page (web_page.py). Each photo request's time per stage
is kept for benchmarks (stage_times.py, read through a handle)."""

import asyncio
import base64
import binascii
import io
import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from ray import serve
from starlette.exceptions import HTTPException as StarletteHTTPException

from actors.serving.payloads import ApiError, model_identity, png_base64
from actors.serving.settings import ALIGNS, ServeSettings
from actors.serving.stage_times import StageTimes, Stopwatch
from actors.serving.web_page import ASSETS, CSP, HEADERS, PAGE, read_static, wants_html

RENDER_BODY_CAP = 256 * 1024       # a vector's JSON is a few KiB
_PHOTO_FORM = {"photo": {"type": "string", "format": "binary"},
               "model": {"type": "string"}, "align": {"type": "string", "enum": list(ALIGNS)},
               "size": {"type": "integer"},
               "crop": {"type": "boolean", "default": True,
                        "description": "false: leave out crop_png (saves its PNG encode)"}}
_PHOTO_JSON = {**_PHOTO_FORM, "image": {"type": "string", "description": "the photo, base64"}}
del _PHOTO_JSON["photo"]

api = FastAPI(title="SwiftAvatar", description="A selfie -> an avatar vector for an avatar "
              "engine, its render, and renders of edited vectors.")


@api.exception_handler(ApiError)
async def _api_error(_: Request, err: ApiError) -> JSONResponse:
    return JSONResponse({"error": err.message}, status_code=err.status)


@api.exception_handler(StarletteHTTPException)
async def _http_error(_: Request, err: StarletteHTTPException) -> JSONResponse:
    """FastAPI's own answers (no such route, wrong method, a malformed multipart body) in the
    same {"error"} form."""
    return JSONResponse({"error": str(err.detail)}, status_code=err.status_code,
                        headers=getattr(err, "headers", None))


@api.exception_handler(Exception)
async def _internal(_: Request, err: Exception) -> JSONResponse:
    return JSONResponse({"error": f"internal error ({type(err).__name__}); the server's log "
                                  f"has the details"}, status_code=500)


# helpers first: serve.ingress copies the class when it is decorated
def _too_big(what: str, cap: int) -> str:
    return (f"the {what} is over the server's limit of {cap / 2 ** 20:g} MiB; send a smaller "
            f"photo (a few megapixels, JPEG)")


def _check_length(request: Request, envelope: int, cap: int) -> None:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > envelope:
        raise ApiError(413, _too_big("upload", cap))


async def _capped_body(request: Request, envelope: int, what: str, cap: int | None = None
                       ) -> bytes:
    """The request body, refused with 413 as soon as it passes `envelope` bytes."""
    _check_length(request, envelope, cap or envelope)
    chunks, n = [], 0
    async for chunk in request.stream():
        n += len(chunk)
        if n > envelope:
            raise ApiError(413, _too_big(what, cap or envelope))
        chunks.append(chunk)
    return b"".join(chunks)


_YES, _NO = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _flag(value: Any, name: str) -> bool:
    """A request's yes/no field (JSON true/false, or a form's 1/0, true/false); absent: yes."""
    if value is None or value == "" or value is True:
        return True
    if value is False:
        return False
    text = str(value).strip().lower()
    if text in _YES or text in _NO:
        return text in _YES
    raise ApiError(422, f"{name} must be true or false, got {value!r}")


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ApiError(400, "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, f"the body must be a JSON object, got {type(data).__name__}")
    return data


@serve.ingress(api)
class Ingress:
    """Routes requests through face framing -> estimator -> renderer."""

    def __init__(self, face: Any, estimator: Any, renderer: Any, settings: dict) -> None:
        self.face, self.estimator, self.renderer = face, estimator, renderer
        self.s = ServeSettings.from_dict(settings)
        self._models: dict[str, dict[str, Any]] | None = None
        self._schemas: dict[str, Any] = {}
        self._times = StageTimes()
        from swiftavatar.predictor import FaceFramer

        self._centre = FaceFramer("none")        # align none is a resize: no hop for it

    # ---- the routes ------------------------------------------------------------------
    @api.get("/", response_class=Response, responses={200: {"content": {
        "text/html": {}, "application/json": {}}}})
    async def root(self, request: Request) -> Response:
        """The web page for a browser (Accept: text/html), else where the API is (JSON)."""
        if wants_html(request.headers.get("accept", "")):
            return Response(read_static(PAGE), media_type="text/html; charset=utf-8",
                            headers={**HEADERS, "Content-Security-Policy": CSP})
        return JSONResponse({"service": "swiftavatar", "docs": "/docs",
                             "models": "/v1/models"})

    @api.get("/static/{name}", response_class=Response, include_in_schema=False)
    async def static(self, name: str) -> Response:
        """The page's CSS and JS (only the shipped files named in web_page.ASSETS)."""
        if name not in ASSETS:
            raise ApiError(404, f"no file {name!r} here; the web page is at /")
        return Response(read_static(name), media_type=ASSETS[name], headers=HEADERS)

    @api.get("/healthz")
    async def healthz(self) -> dict[str, Any]:
        return {"status": "ok", "models": list(await self._described())}

    @api.get("/v1/models")
    async def models(self) -> dict[str, Any]:
        """Each model's engine and schema: its parameters with types, ranges and options."""
        return {"models": [{k: v for k, v in m.items() if k != "schema"}
                           for m in (await self._described()).values()]}

    @api.post("/v1/avatars", openapi_extra={"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "properties": _PHOTO_FORM,
                                           "required": ["photo"]}},
        "application/json": {"schema": {"type": "object", "properties": _PHOTO_JSON,
                                        "required": ["image"]}}}}})
    async def avatars(self, request: Request) -> dict[str, Any]:
        """A photo (multipart field 'photo', or JSON 'image' in base64) and a model name ->
        the avatar vector, its render and the crop the estimator saw (PNGs in base64; with
        'crop' false, crop_png is null), the face box and detection score, and the model's
        identity."""
        watch = Stopwatch()
        data, fields = await self._photo_request(request)
        name, info = await self._model(fields.get("model"))
        align = fields.get("align") or self.s.align
        if align not in ALIGNS:
            raise ApiError(422, f"align must be one of {', '.join(ALIGNS)}, got {align!r}")
        size = self._size(fields.get("size"))
        want_crop = _flag(fields.get("crop"), "crop")
        watch.lap("read")
        if align == "none":
            framed = await asyncio.to_thread(self._decode_centre, data, info["input_size"])
            watch.lap("decode")
        else:
            image = await asyncio.to_thread(self._decode, data)
            watch.lap("decode")
            framed = await self.face.frame.remote(image, info["input_size"], align)
            watch.lap("face")
            if isinstance(framed, str):
                raise ApiError(400, framed)
        vector = await self.estimator.predict.remote(name, framed.crop)
        watch.lap("estimator")
        png = await self.renderer.render.remote(name, vector, size)
        watch.lap("render")
        if isinstance(png, str):
            raise ApiError(500, f"the predicted vector did not render: {png}")
        face = (None if framed.face_score is None else
                {"box": list(framed.face_box), "score": framed.face_score})
        out = {"model": model_identity(info), "vector": vector, "face": face,
               "avatar_png": base64.b64encode(png).decode("ascii"),
               "crop_png": png_base64(framed.crop) if want_crop else None, "align": align}
        watch.lap("encode")
        self._times.record(watch.done())
        return out

    # ---- for benchmarks (handle calls, not routes) -------------------------------------
    def stage_times(self, reset: bool = False) -> dict[str, dict[str, float]]:
        """Median and mean ms per stage of recent POST /v1/avatars requests in this replica
        (stage_times.StageTimes); `reset` starts a new window after reading."""
        out = self._times.summary()
        if reset:
            self._times.reset()
        return out

    @api.post("/v1/render", response_class=Response, openapi_extra={"requestBody": {
        "required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["vector"], "properties": {
                "model": {"type": "string"}, "vector": {"type": "object"},
                "size": {"type": "integer"}}}}}}},
        responses={200: {"content": {"image/png": {}}}})
    async def render(self, request: Request) -> Response:
        """{model, vector (parameter: value, every parameter), size} -> the avatar as PNG."""
        body = _json_object(await _capped_body(request, RENDER_BODY_CAP, "render request"))
        name, _ = await self._model(body.get("model"))
        size = self._size(body.get("size"))
        from swiftavatar.engines.schema import InvalidVectorError

        try:
            self._schemas[name].vector(body.get("vector"))
        except InvalidVectorError as err:
            raise ApiError(422, f"invalid vector: {err}") from None
        png = await self.renderer.render.remote(name, body["vector"], size)
        if isinstance(png, str):
            raise ApiError(422, f"invalid vector: {png}")
        return Response(png, media_type="image/png")

    # ---- the parts -------------------------------------------------------------------
    async def _described(self) -> dict[str, dict[str, Any]]:
        if self._models is None:
            from swiftavatar.engines.schema import EngineSchema

            models = await self.estimator.describe.remote()
            self._schemas = {n: EngineSchema.from_dict(m["schema"]) for n, m in models.items()}
            self._models = models
        return self._models

    async def _model(self, name: Any) -> tuple[str, dict[str, Any]]:
        models = await self._described()
        if name in (None, "") and len(models) == 1:
            name = next(iter(models))
        if not isinstance(name, str) or name not in models:
            what = "no model named" if name in (None, "") else f"unknown model {name!r}"
            raise ApiError(404 if name not in (None, "") else 400,
                           f"{what}; this server has: {', '.join(models)} (GET /v1/models)")
        return name, models[name]

    def _size(self, size: Any) -> int:
        if size in (None, ""):
            return self.s.render_size
        try:
            value = int(size)
        except (TypeError, ValueError):
            value = -1
        if str(size).strip() != str(value) or not 16 <= value <= self.s.max_render_size:
            raise ApiError(422, f"size must be a whole number of pixels in 16.."
                                f"{self.s.max_render_size}, got {size!r}")
        return value

    async def _photo_request(self, request: Request) -> tuple[bytes, dict[str, Any]]:
        """(the photo's bytes, the other fields) of a multipart or JSON request."""
        cap = self.s.max_upload_bytes
        envelope = cap * 4 // 3 + 64 * 1024             # base64 and the other fields
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "multipart/form-data":
            _check_length(request, envelope, cap)
            form = await request.form(max_files=1, max_fields=8)
            photo = form.get("photo")
            if photo is None or isinstance(photo, str):
                raise ApiError(400, "no photo: send the image file in the multipart field "
                                    "'photo'")
            data = await photo.read(cap + 1)
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
        elif ctype == "application/json":
            fields = _json_object(await _capped_body(request, envelope, "upload", cap))
            encoded = fields.get("image")
            if not isinstance(encoded, str) or not encoded:
                raise ApiError(400, "no photo: send the image file in base64 as the JSON "
                                    "field 'image'")
            try:
                data = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise ApiError(400, "the JSON field 'image' is not valid base64") from None
        else:
            raise ApiError(415, f"unsupported body {ctype or '(none)'}: send multipart/"
                                f"form-data with the file in 'photo', or JSON with the file "
                                f"in base64 in 'image'")
        if len(data) > cap:
            raise ApiError(413, _too_big("upload", cap))
        return data, fields

    def _decode_centre(self, data: bytes, size: int) -> Any:
        """align none in the ingress: decode, then the centre square resized to `size`."""
        return self._centre.frame(self._decode(data), size, "the photo")

    def _decode(self, data: bytes) -> Any:
        from swiftavatar.selfies import ImageInputError, ImageTooLargeError, decode_rgb_image

        try:
            return decode_rgb_image(io.BytesIO(data), "the photo", max_pixels=self.s.max_pixels)
        except ImageTooLargeError as err:
            raise ApiError(413, str(err)) from None
        except ImageInputError as err:
            raise ApiError(400, str(err)) from None


__all__ = ["Ingress", "api"]
