# Builds blockserve (Java + native library) and runs the server.
FROM eclipse-temurin:17-jdk AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake g++ make && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY .mvn .mvn
COPY mvnw pom.xml ./
RUN ./mvnw -B -q dependency:go-offline
COPY native native
COPY src src
# portable: the image may run on another CPU than the one that built it
RUN ./mvnw -B -q -DskipTests -Dblockserve.native.arch=portable package

FROM eclipse-temurin:17-jre
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/blockserve.jar /app/blockserve.jar
EXPOSE 8000
ENTRYPOINT ["java", "-jar", "/app/blockserve.jar"]
