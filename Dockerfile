# The image users run: blockserve's jar (its CPU kernels for every x86-64 level inside: the image runs
# on any x86-64 CPU at that CPU's best level), a JRE 17, libgomp, a non-root user, /models for the model
# (mount it read-only), the Hugging Face cache as a volume, port 8000 and a health check.
#   docker build -t blockserve .
#   docker run -p 8000:8000 -v /path/to/SmolLM2-135M-Instruct:/models/model:ro blockserve
# The base images are arguments: public ones by default; machines without a registry pass locally
# built ones (deploy/docker/make-base-images.sh, as .ci/run does).
ARG BUILD_IMAGE=eclipse-temurin:17-jdk
ARG RUN_IMAGE=eclipse-temurin:17-jre

FROM ${BUILD_IMAGE} AS build
# CMake and a C++ compiler for the native library (the local build base has them already)
RUN if ! command -v cmake >/dev/null || ! command -v g++ >/dev/null; then \
      apt-get update && apt-get install -y --no-install-recommends cmake g++ make && rm -rf /var/lib/apt/lists/*; fi
WORKDIR /src
COPY .mvn .mvn
COPY mvnw pom.xml ./
COPY native native
COPY src src
# no CUDA library in this image (no nvcc here); tests run in the project's own build, not in the image
RUN ./mvnw -B -q -Dmaven.test.skip=true -Dblockserve.cuda=off -Dblockserve.emulated-tests=OFF package

FROM ${RUN_IMAGE}
RUN if ! ldconfig -p | grep -q libgomp.so.1; then \
      apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*; fi \
 && useradd --system --uid 10001 --create-home --home-dir /home/blockserve blockserve \
 && mkdir -p /models /home/blockserve/.cache/huggingface \
 && chown -R blockserve /home/blockserve
COPY --from=build /src/target/blockserve.jar /app/blockserve.jar
USER blockserve
ENV BLOCKSERVE_MODEL=/models/model \
    HF_HOME=/home/blockserve/.cache/huggingface \
    JAVA_TOOL_OPTIONS="-XX:MaxRAMPercentage=25 -XX:+ExitOnOutOfMemoryError"
# The JVM heap holds requests and tokenizer state only: weights are mapped files and the KV cache is
# native memory (blockserve.kv-cache.memory). JAVA_TOOL_OPTIONS may be replaced (e.g. -Xmx512m).
VOLUME ["/models", "/home/blockserve/.cache/huggingface"]
EXPOSE 8000
# exec form: no /bin/sh involved; bash's /dev/tcp asks GET /health and wants a 200
HEALTHCHECK --interval=2s --timeout=3s --start-period=120s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8000 && printf 'GET /health HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["java", "-jar", "/app/blockserve.jar"]
